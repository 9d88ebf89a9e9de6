import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';
import { KubeApiError } from '../../../webhook/kube-client.ts';
import {
  reduceTrainJob,
  type TrainJobApi,
  type TrainJobEvent,
} from '../../../webhook/trainjob-api.ts';
import { TrainJobCache } from '../../../webhook/trainjob-cache.ts';
import { optedIn } from './fixtures.ts';

/**
 * A TrainJobApi whose list, watch and get the test drives. It produces what a real API server
 * does not on demand: a watch that expires with 410 Gone, a BOOKMARK at a chosen moment, a
 * live read that hangs and one that fails with 500. List, watch events and live reads are
 * tested against a real kube-apiserver in test/integration/webhook/trainjob-cache.test.ts.
 */
class FakeApi implements TrainJobApi {
  items: TrainJobObject[] = [];
  lists = 0;
  watchVersions: string[] = [];
  gets: string[] = [];
  getResult: (name: string) => Promise<TrainJobObject | undefined> = () =>
    Promise.resolve(undefined);
  #emit: ((event: TrainJobEvent) => void) | undefined;
  #endWatch: ((error?: Error) => void) | undefined;

  list(): Promise<{ items: TrainJobObject[]; resourceVersion: string }> {
    this.lists++;
    return Promise.resolve({ items: [...this.items], resourceVersion: `list-${this.lists}` });
  }

  watch(
    resourceVersion: string,
    onEvent: (event: TrainJobEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.watchVersions.push(resourceVersion);
    this.#emit = onEvent;
    return new Promise((resolve, reject) => {
      this.#endWatch = (error) => (error === undefined ? resolve() : reject(error));
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  get(namespace: string, name: string): Promise<TrainJobObject | undefined> {
    this.gets.push(`${namespace}/${name}`);
    return this.getResult(name);
  }

  emit(type: string, object: TrainJobObject): void {
    this.#emit!({ type, object });
  }

  endWatch(error?: Error): void {
    this.#endWatch!(error);
  }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(5);
  expect(check()).to.equal(true);
}

describe('webhook/trainjob-cache', () => {
  let api: FakeApi;
  let cache: TrainJobCache;

  beforeEach(() => {
    api = new FakeApi();
    cache = new TrainJobCache({
      api,
      logger: createLogger('test', 'silent'),
      liveReadTimeoutMs: 200,
    });
  });

  afterEach(async () => {
    await cache.stop();
  });

  it('resumes the watch from the last event version', async () => {
    cache.start();
    await until(() => api.watchVersions.length === 1);
    api.emit('BOOKMARK', { metadata: { name: '', namespace: '', resourceVersion: '42' } });
    api.endWatch();
    await until(() => api.watchVersions.length === 2);
    expect(api.watchVersions[1]).to.equal('42');
    expect(api.lists).to.equal(1);
  });

  it('lists again after 410 Gone', async () => {
    api.items = [optedIn('old')];
    cache.start();
    await until(() => api.watchVersions.length === 1);
    api.items = [optedIn('new')];
    api.endWatch(
      new KubeApiError('WATCH', '/trainjobs', 410, { message: 'too old resource version' }),
    );
    await until(() => api.watchVersions.length === 2);
    expect(api.lists).to.equal(2);
    expect(api.watchVersions[1]).to.equal('list-2');
    expect(cache.size).to.equal(1);
    expect(cache.lookup({ namespace: 'team-a', name: 'new' })).to.have.property('status', 'found');
  });

  it('reports a live read that times out', async () => {
    api.getResult = () => new Promise(() => undefined);
    const lookup = await cache.lookup({ namespace: 'team-a', name: 'slow' });
    expect(lookup).to.have.property('status', 'failed');
    expect(lookup).to.have.property('message').that.contains('timed out after 200 ms');
  });

  it('reports a failed live read without remembering it', async () => {
    api.getResult = () =>
      Promise.reject(new KubeApiError('GET', '/x', 500, { message: 'etcd down' }));
    expect(await cache.lookup({ namespace: 'team-a', name: 'x' })).to.have.property(
      'status',
      'failed',
    );
    expect(await cache.lookup({ namespace: 'team-a', name: 'x' })).to.have.property(
      'status',
      'failed',
    );
    expect(api.gets).to.have.length(2);
  });

  describe('reduceTrainJob', () => {
    it('keeps only prefixed annotations except the status', () => {
      const reduced = reduceTrainJob({
        metadata: {
          name: 'a',
          namespace: 'b',
          resourceVersion: '3',
          annotations: {
            'trainer.opendatahub.io/progression-tracking': 'true',
            'trainer.opendatahub.io/trainerStatus': '{}',
            'kubectl.kubernetes.io/last-applied-configuration': '{}',
          },
        },
        spec: { big: true },
        status: { conditions: [] },
      });
      expect(reduced).to.deep.equal({
        metadata: {
          name: 'a',
          namespace: 'b',
          resourceVersion: '3',
          annotations: { 'trainer.opendatahub.io/progression-tracking': 'true' },
        },
      });
    });

    it('returns undefined without a name', () => {
      expect(reduceTrainJob({ metadata: { namespace: 'b' } })).to.equal(undefined);
    });
  });
});
