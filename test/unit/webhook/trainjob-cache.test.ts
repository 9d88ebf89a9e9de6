import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';
import type { TrainJobLookup } from '../../../webhook/injection-decision.ts';
import { KubeApiError } from '../../../webhook/kube-client.ts';
import {
  reduceTrainJob,
  type TrainJobApi,
  type TrainJobEvent,
} from '../../../webhook/trainjob-api.ts';
import { TrainJobCache } from '../../../webhook/trainjob-cache.ts';
import { optedIn } from './fixtures.ts';

/** A TrainJobApi whose list, watch and get the test drives. */
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

  it('serves listed TrainJobs synchronously', async () => {
    api.items = [optedIn('llama')];
    cache.start();
    await cache.whenSynced();
    const lookup = cache.lookup({ namespace: 'team-a', name: 'llama' });
    expect(lookup).to.not.be.instanceOf(Promise);
    expect(lookup).to.have.property('status', 'found');
    expect(cache.synced).to.equal(true);
  });

  it('watches from the list version', async () => {
    cache.start();
    await until(() => api.watchVersions.length === 1);
    expect(api.watchVersions).to.deep.equal(['list-1']);
  });

  it('applies added, modified and deleted events', async () => {
    cache.start();
    await until(() => api.watchVersions.length === 1);
    const job = { metadata: { ...optedIn('llama').metadata, resourceVersion: '7' } };
    api.emit('ADDED', job);
    expect(cache.lookup({ namespace: 'team-a', name: 'llama' })).to.deep.equal({
      status: 'found',
      trainJob: job,
    });
    const changed = { metadata: { ...job.metadata, annotations: {}, resourceVersion: '8' } };
    api.emit('MODIFIED', changed);
    expect(cache.lookup({ namespace: 'team-a', name: 'llama' })).to.deep.equal({
      status: 'found',
      trainJob: changed,
    });
    api.emit('DELETED', changed);
    expect(cache.size).to.equal(0);
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

  it('reads a missing TrainJob once for concurrent lookups', async () => {
    cache.start();
    await cache.whenSynced();
    api.getResult = async () => {
      await sleep(20);
      return optedIn('fresh');
    };
    const pending = [1, 2, 3].map(() => cache.lookup({ namespace: 'team-a', name: 'fresh' }));
    for (const lookup of pending) expect(lookup).to.be.instanceOf(Promise);
    const lookups = await Promise.all(pending as Promise<TrainJobLookup>[]);
    expect(api.gets).to.deep.equal(['team-a/fresh']);
    for (const lookup of lookups) expect(lookup).to.have.property('status', 'found');
  });

  it('remembers a TrainJob that does not exist', async () => {
    cache.start();
    await cache.whenSynced();
    expect(await cache.lookup({ namespace: 'team-a', name: 'jobset-only' })).to.deep.equal({
      status: 'not-found',
    });
    expect(await cache.lookup({ namespace: 'team-a', name: 'jobset-only' })).to.deep.equal({
      status: 'not-found',
    });
    expect(api.gets).to.have.length(1);
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
