// Authentication of sidecar streams. A sidecar presents a projected service-account token
// bound to its pod. A TokenReview with the configured audience validates it (and, for a
// pod-bound token, that the pod still exists) and returns the pod's name and UID in the
// user's extra fields. The pod is then read to confirm its UID and to learn the TrainJob it
// belongs to from the JobSet name label, so a pod can only report on its own TrainJob.
// Only the TokenReview outcome is cached: the pod is read again on every connection, so a
// token whose pod was deleted or replaced is rejected even while its review is cached.

import {
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  JOBSET_NAME_LABEL,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_REPLICATED_JOB,
} from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import { describeApiError, statusCodeOf } from '../shared/kube-errors.ts';
import { ReviewCache, reviewTtlMs, tokenCacheKey } from './review-cache.ts';

export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** How long a rejection is remembered, so a client retrying a bad token costs few reviews. */
const REJECTION_CACHE_MS = 10_000;
/**
 * Projected service account tokens are JWTs: three base64url parts. Other tokens are
 * rejected without a TokenReview, so garbage tokens cost no API server requests.
 */
const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** The pod behind a sidecar token and the TrainJob it belongs to. */
export interface SidecarIdentity {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
  trainJob: string;
}

/** 401: the token is not valid; 403: valid but not allowed here; 503: the review failed. */
export type AuthFailureStatus = 401 | 403 | 503;

export type SidecarAuthResult =
  | { ok: true; identity: SidecarIdentity }
  | { ok: false; status: AuthFailureStatus; reason: string };

/** Claims of a pod-bound token that a TokenReview accepted; the pod is not checked yet. */
export type TokenClaims = Omit<SidecarIdentity, 'trainJob'>;

type TokenReviewResult =
  { ok: true; claims: TokenClaims } | { ok: false; status: AuthFailureStatus; reason: string };

export interface SidecarAuthenticator {
  authenticate(token: string): Promise<SidecarAuthResult>;
}

export interface SidecarAuthOptions {
  audience: string;
  cacheSeconds: number;
  logger: Logger;
  now?: () => number;
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

function deny(
  status: AuthFailureStatus,
  reason: string,
): { ok: false; status: AuthFailureStatus; reason: string } {
  return { ok: false, status, reason };
}

/**
 * Checks the pod that a token is bound to, as read from the API server, or `undefined` when
 * it was not found. The pod must have the token's UID and be a trainer pod of a JobSet.
 * The JobSet's name is the TrainJob's name.
 */
export function checkTokenPod(claims: TokenClaims, pod: V1Pod | undefined): SidecarAuthResult {
  const { namespace, podName, podUid } = claims;
  if (pod === undefined) return deny(403, `pod ${namespace}/${podName} not found`);
  if (pod.metadata?.uid !== podUid) {
    return deny(
      403,
      `pod ${namespace}/${podName} has UID ${pod.metadata?.uid ?? 'none'}, but the token belongs to the pod with UID ${podUid}`,
    );
  }
  const labels = pod.metadata.labels ?? {};
  const trainJob = labels[JOBSET_NAME_LABEL];
  if (trainJob === undefined || trainJob === '') {
    return deny(403, `pod ${namespace}/${podName} has no ${JOBSET_NAME_LABEL} label`);
  }
  if (labels[REPLICATED_JOB_NAME_LABEL] !== TRAINER_REPLICATED_JOB) {
    return deny(403, `pod ${namespace}/${podName} is not a ${TRAINER_REPLICATED_JOB} pod`);
  }
  return { ok: true, identity: { ...claims, trainJob } };
}

export class KubernetesSidecarAuthenticator implements SidecarAuthenticator {
  readonly #authentication: AuthenticationV1Api;
  readonly #core: CoreV1Api;
  readonly #options: SidecarAuthOptions;
  readonly #cache = new ReviewCache<TokenReviewResult>();
  readonly #now: () => number;

  constructor(kubeConfig: KubeConfig, options: SidecarAuthOptions) {
    this.#authentication = kubeConfig.makeApiClient(AuthenticationV1Api);
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Validates a sidecar token and reads its pod. TokenReview results are cached for at most
   * the token's lifetime, but the pod is read on every call.
   */
  async authenticate(token: string): Promise<SidecarAuthResult> {
    if (!JWT_SHAPE.test(token)) {
      return deny(401, 'token rejected: it is not a JWT, so it is no service account token');
    }
    const now = this.#now();
    const cacheMs = this.#options.cacheSeconds * 1000;
    const review = await this.#cache.get(tokenCacheKey(token, 'sidecar'), now, async () => {
      const value = await this.#review(token);
      if (!value.ok && value.status === 503) return { value, ttlMs: 0 };
      const ttlMs = value.ok
        ? reviewTtlMs(token, cacheMs, now)
        : Math.min(cacheMs, REJECTION_CACHE_MS);
      return { value, ttlMs };
    });
    if (!review.ok) return review;
    return this.#checkPod(review.claims);
  }

  async #review(token: string): Promise<TokenReviewResult> {
    const audience = this.#options.audience;
    let status;
    try {
      const review = await this.#authentication.createTokenReview({
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [audience] },
        },
      });
      status = review.status;
    } catch (error) {
      this.#options.logger.error({ error: describeApiError(error) }, 'TokenReview failed');
      return deny(503, 'token review failed; retry later');
    }
    if (status?.authenticated !== true) {
      return deny(401, `token rejected: ${status?.error ?? 'not authenticated'}`);
    }
    if (!(status.audiences ?? []).includes(audience)) {
      return deny(401, `token rejected: it is not valid for audience ${audience}`);
    }
    const match = SERVICE_ACCOUNT_USER.exec(status.user?.username ?? '');
    if (match === null) return deny(403, 'token is not a service account token');
    const extra = status.user?.extra ?? {};
    const podName = extra[POD_NAME_EXTRA]?.[0];
    const podUid = extra[POD_UID_EXTRA]?.[0];
    if (podName === undefined || podUid === undefined) {
      return deny(403, 'token is not bound to a pod; use a projected service account token');
    }
    return {
      ok: true,
      claims: { namespace: match[1]!, serviceAccount: match[2]!, podName, podUid },
    };
  }

  async #checkPod(claims: TokenClaims): Promise<SidecarAuthResult> {
    const { namespace, podName } = claims;
    let pod: V1Pod | undefined;
    try {
      pod = await this.#core.readNamespacedPod({ namespace, name: podName });
    } catch (error) {
      if (statusCodeOf(error) !== 404) {
        this.#options.logger.error(
          { pod: `${namespace}/${podName}`, error: describeApiError(error) },
          'pod read failed',
        );
        return deny(503, 'pod lookup failed; retry later');
      }
    }
    return checkTokenPod(claims, pod);
  }
}
