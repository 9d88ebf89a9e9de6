// Authorization of viewers, as the Kubernetes API server would authorize them: a
// TokenReview (with the API server's default audience) identifies the user, and a
// SubjectAccessReview checks whether that user may `get` the TrainJob, or any TrainJob of the
// namespace when no name is given.

import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  type KubeConfig,
  type V1UserInfo,
} from '@kubernetes/client-node';
import { TRAINJOB_GROUP, TRAINJOB_PLURAL } from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import { describeApiError } from '../shared/kube-errors.ts';
import { ReviewCache, reviewTtlMs, tokenCacheKey } from './review-cache.ts';
import type { AuthFailureStatus } from './sidecar-auth.ts';

export type ViewerAuthResult =
  { ok: true; user: string } | { ok: false; status: AuthFailureStatus; reason: string };

export interface ViewerAuthorizer {
  /** Decides whether the bearer of `token` may read the TrainJob `name` (or all) in `namespace`. */
  authorize(
    token: string | undefined,
    namespace: string,
    name: string | undefined,
  ): Promise<ViewerAuthResult>;
}

/** Allows every viewer; for `--auth none`, which only listens on loopback addresses. */
export class OpenViewerAuthorizer implements ViewerAuthorizer {
  authorize(): Promise<ViewerAuthResult> {
    return Promise.resolve({ ok: true, user: 'anonymous' });
  }
}

type UserResult =
  { ok: true; user: V1UserInfo } | { ok: false; status: AuthFailureStatus; reason: string };

export class KubernetesViewerAuthorizer implements ViewerAuthorizer {
  readonly #authentication: AuthenticationV1Api;
  readonly #authorization: AuthorizationV1Api;
  readonly #users = new ReviewCache<UserResult>();
  readonly #decisions = new ReviewCache<ViewerAuthResult>();
  readonly #cacheMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(
    kubeConfig: KubeConfig,
    options: { cacheSeconds: number; logger: Logger; now?: () => number },
  ) {
    this.#authentication = kubeConfig.makeApiClient(AuthenticationV1Api);
    this.#authorization = kubeConfig.makeApiClient(AuthorizationV1Api);
    this.#cacheMs = options.cacheSeconds * 1000;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  async authorize(
    token: string | undefined,
    namespace: string,
    name: string | undefined,
  ): Promise<ViewerAuthResult> {
    if (token === undefined) return { ok: false, status: 401, reason: 'missing bearer token' };
    const now = this.#now();
    const scope = `viewer\0${namespace}\0${name ?? ''}`;
    return this.#decisions.get(tokenCacheKey(token, scope), now, async () => {
      const user = await this.#identify(token, now);
      if (!user.ok) return { value: user, ttlMs: 0 };
      const value = await this.#review(user.user, namespace, name);
      const ttlMs = value.ok || value.status === 403 ? reviewTtlMs(token, this.#cacheMs, now) : 0;
      return { value, ttlMs };
    });
  }

  async #identify(token: string, now: number): Promise<UserResult> {
    return this.#users.get(tokenCacheKey(token, 'viewer-user'), now, async () => {
      try {
        const review = await this.#authentication.createTokenReview({
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
        });
        const status = review.status;
        if (status?.authenticated !== true || status.user === undefined) {
          const value: UserResult = {
            ok: false,
            status: 401,
            reason: `token rejected: ${status?.error ?? 'not authenticated'}`,
          };
          return { value, ttlMs: 0 };
        }
        return {
          value: { ok: true, user: status.user },
          ttlMs: reviewTtlMs(token, this.#cacheMs, now),
        };
      } catch (error) {
        this.#logger.error({ error: describeApiError(error) }, 'TokenReview failed');
        return {
          value: { ok: false, status: 503, reason: 'token review failed; retry later' },
          ttlMs: 0,
        };
      }
    });
  }

  async #review(
    user: V1UserInfo,
    namespace: string,
    name: string | undefined,
  ): Promise<ViewerAuthResult> {
    const resourceAttributes = {
      namespace,
      verb: 'get',
      group: TRAINJOB_GROUP,
      resource: TRAINJOB_PLURAL,
      ...(name === undefined ? {} : { name }),
    };
    const userName = user.username ?? '';
    try {
      const review = await this.#authorization.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: userName,
            groups: user.groups ?? [],
            uid: user.uid ?? '',
            extra: user.extra ?? {},
            resourceAttributes,
          },
        },
      });
      if (review.status?.allowed === true) return { ok: true, user: userName };
      const target =
        name === undefined
          ? `trainjobs in namespace ${namespace}`
          : `trainjob ${namespace}/${name}`;
      return { ok: false, status: 403, reason: `user ${userName} may not get ${target}` };
    } catch (error) {
      this.#logger.error({ error: describeApiError(error) }, 'SubjectAccessReview failed');
      return { ok: false, status: 503, reason: 'access review failed; retry later' };
    }
  }
}
