// The TrainJob cache against a real kube-apiserver: the first list, watch events for
// TrainJobs created, changed and deleted later, and the live read on a cache miss.

import { expect } from 'chai';
import {
  PROGRESSION_TRACKING_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../../../shared/annotations.ts';
import { createLogger } from '../../../shared/logger.ts';
import type { TrainJobLookup } from '../../../webhook/injection-decision.ts';
import { KubeClient, MERGE_PATCH } from '../../../webhook/kube-client.ts';
import { kubeTrainJobApi, type TrainJobApi } from '../../../webhook/trainjob-api.ts';
import { TrainJobCache } from '../../../webhook/trainjob-cache.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  createNamespace,
  createTrainJob,
  deleteNamespace,
  uniqueName,
  waitFor,
} from './kube-objects.ts';

const logger = createLogger('webhook-test', 'silent');

describe('TrainJob cache against kube-apiserver', function () {
  this.timeout(60_000);
  let client: KubeClient;
  let namespace: string;
  let gets: string[];
  let cache: TrainJobCache | undefined;

  /** Returns the real API, recording each live read as `namespace/name` in `gets`. */
  function countingApi(): TrainJobApi {
    const api = kubeTrainJobApi(client);
    return {
      list: (signal) => api.list(signal),
      watch: (resourceVersion, onEvent, signal) => api.watch(resourceVersion, onEvent, signal),
      get: (ns, name, signal) => {
        gets.push(`${ns}/${name}`);
        return api.get(ns, name, signal);
      },
    };
  }

  function newCache(): TrainJobCache {
    cache = new TrainJobCache({ api: countingApi(), logger, liveReadTimeoutMs: 5_000 });
    return cache;
  }

  function trainJobPath(name: string): string {
    return `/apis/${TRAINJOB_GROUP}/${TRAINJOB_VERSION}/namespaces/${namespace}/${TRAINJOB_PLURAL}/${name}`;
  }

  function cachedStatus(lookup: TrainJobLookup | Promise<TrainJobLookup>): string | undefined {
    return lookup instanceof Promise ? undefined : lookup.status;
  }

  before(async () => {
    client = new KubeClient(kubeConfigFor(getControlPlane()));
    namespace = uniqueName('tp-cache');
    await createNamespace(client, namespace);
  });

  beforeEach(() => {
    gets = [];
  });

  afterEach(async () => {
    await cache?.stop();
    cache = undefined;
  });

  after(async () => {
    await deleteNamespace(client, namespace);
  });

  it('serves listed TrainJobs synchronously', async () => {
    await createTrainJob(client, namespace, 'listed', {
      [PROGRESSION_TRACKING_ANNOTATION]: 'true',
      'trainer.opendatahub.io/trainerStatus': '{"progressPercentage":10}',
      'example.com/other': 'dropped',
    });
    const started = newCache();
    started.start();
    await started.whenSynced();
    expect(started.synced).to.equal(true);

    const lookup = started.lookup({ namespace, name: 'listed' });
    expect(lookup).to.not.be.instanceOf(Promise);
    expect(lookup).to.have.property('status', 'found');
    const trainJob = (lookup as Extract<TrainJobLookup, { status: 'found' }>).trainJob;
    expect(trainJob.metadata.annotations).to.deep.equal({
      [PROGRESSION_TRACKING_ANNOTATION]: 'true',
    });
    expect(trainJob.metadata.resourceVersion).to.match(/^\d+$/);
    expect(gets).to.deep.equal([]);
  });

  it('applies watched create, change and delete', async () => {
    const started = newCache();
    started.start();
    await started.whenSynced();
    const name = uniqueName('watched');
    const reference = { namespace, name };
    // Only the list and the watch change `size`. A lookup before the event arrives is a miss
    // that a live read answers, so the checks below wait on `size` first.
    const sizeBefore = started.size;

    await createTrainJob(client, namespace, name, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    await waitFor('the watch to add the TrainJob', 10_000, () =>
      Promise.resolve(started.size === sizeBefore + 1),
    );
    expect(cachedStatus(started.lookup(reference))).to.equal('found');

    await client.request('PATCH', trainJobPath(name), {
      body: { metadata: { annotations: { [PROGRESSION_TRACKING_ANNOTATION]: 'false' } } },
      contentType: MERGE_PATCH,
    });
    await waitFor('the watch to apply the change', 10_000, () => {
      const lookup = started.lookup(reference);
      return Promise.resolve(
        !(lookup instanceof Promise) &&
          lookup.status === 'found' &&
          lookup.trainJob.metadata.annotations?.[PROGRESSION_TRACKING_ANNOTATION] === 'false',
      );
    });

    await client.request('DELETE', trainJobPath(name));
    await waitFor('the watch to remove the TrainJob', 10_000, () =>
      Promise.resolve(started.size === sizeBefore),
    );
  });

  it('reads a missing TrainJob live once', async () => {
    const name = uniqueName('live');
    await createTrainJob(client, namespace, name, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    // Not started, so every TrainJob is a miss and goes to the API server.
    const unstarted = newCache();
    const pending = [1, 2, 3].map(() => unstarted.lookup({ namespace, name }));
    for (const lookup of pending) expect(lookup).to.be.instanceOf(Promise);
    const lookups = await Promise.all(pending as Promise<TrainJobLookup>[]);
    for (const lookup of lookups) expect(lookup).to.have.property('status', 'found');
    expect(gets).to.deep.equal([`${namespace}/${name}`]);
  });

  it('remembers a TrainJob that does not exist', async () => {
    const started = newCache();
    started.start();
    await started.whenSynced();
    const reference = { namespace, name: 'jobset-only' };
    expect(await started.lookup(reference)).to.deep.equal({ status: 'not-found' });
    expect(await started.lookup(reference)).to.deep.equal({ status: 'not-found' });
    expect(gets).to.deep.equal([`${namespace}/jobset-only`]);
  });
});
