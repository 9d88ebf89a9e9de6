// Fan-out of job progress to viewer WebSockets.
//
// Each update is serialized once into a Buffer and the same Buffer is sent to every viewer
// of that job or its namespace. A viewer whose socket has more than HIGH_WATER_BYTES
// unsent is congested. From then on it keeps at most one pending update per job, because
// progress is state and a newer update replaces the older one. A flush timer sends the
// pending updates as its socket drains. A viewer that stays congested for `congestedCloseMs` is
// closed. Memory per viewer is therefore bounded by the number of jobs it watches.
//
// Sockets that receive a message are corked until the event loop's next check phase. So
// the updates published while one batch of I/O is processed leave in one write per viewer,
// instead of one system call per message, which dominates the cost of a delivery.

import type {
  JobProgress,
  RemovedMessage,
  SnapshotMessage,
  UpdateMessage,
} from '../shared/stream-protocol.ts';
import { CLOSE_CODES } from '../shared/stream-protocol.ts';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { jobKey } from './job-state.ts';

export const HIGH_WATER_BYTES = 64 * 1024;
export const CONGESTED_CLOSE_MS = 30_000;
export const FLUSH_INTERVAL_MS = 50;

/** The part of a `ws` WebSocket that the hub uses. */
export interface ViewerSocket {
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: boolean }): void;
  close(code: number, reason: string): void;
  /** Hold writes until uncork; optional, for sockets that support it. */
  cork?(): void;
  uncork?(): void;
}

export interface Viewer {
  readonly socket: ViewerSocket;
  readonly namespace: string;
  /** The one job watched, or undefined for the whole namespace. */
  readonly name: string | undefined;
  /** Latest unsent update per job key, in the order they became pending. */
  readonly pending: Map<string, Buffer>;
  congestedSinceMs: number | undefined;
  corked: boolean;
}

export interface ViewerHubOptions {
  highWaterBytes?: number;
  congestedCloseMs?: number;
  flushIntervalMs?: number;
  now?: () => number;
  /** Counts sent messages, coalesced updates and viewers closed for being slow. */
  onDeliveries?(sent: number, coalesced: number): void;
  onSlowViewerClosed?(viewer: Viewer): void;
}

const TEXT_FRAME = Object.freeze({ binary: false });

export class ViewerHub {
  readonly #byJob = new Map<string, Set<Viewer>>();
  readonly #byNamespace = new Map<string, Set<Viewer>>();
  readonly #congested = new Set<Viewer>();
  readonly #highWater: number;
  readonly #congestedCloseMs: number;
  readonly #flushIntervalMs: number;
  readonly #options: ViewerHubOptions;
  readonly #now: () => number;
  #flushTimer: NodeJS.Timeout | undefined;
  #corked: Viewer[] = [];
  #size = 0;

  constructor(options: ViewerHubOptions = {}) {
    this.#options = options;
    this.#highWater = options.highWaterBytes ?? HIGH_WATER_BYTES;
    this.#congestedCloseMs = options.congestedCloseMs ?? CONGESTED_CLOSE_MS;
    this.#flushIntervalMs = options.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Number of connected viewers. */
  get size(): number {
    return this.#size;
  }

  /** Registers a viewer and sends it a snapshot of the jobs it watches. */
  add(
    socket: ViewerSocket,
    namespace: string,
    name: string | undefined,
    jobs: JobProgress[],
  ): Viewer {
    const viewer: Viewer = {
      socket,
      namespace,
      name,
      pending: new Map(),
      congestedSinceMs: undefined,
      corked: false,
    };
    const index = name === undefined ? this.#byNamespace : this.#byJob;
    const key = name === undefined ? namespace : jobKey(namespace, name);
    let viewers = index.get(key);
    if (viewers === undefined) index.set(key, (viewers = new Set()));
    viewers.add(viewer);
    this.#size++;
    const snapshot: SnapshotMessage = { type: 'snapshot', jobs };
    socket.send(Buffer.from(JSON.stringify(snapshot)), TEXT_FRAME);
    return viewer;
  }

  remove(viewer: Viewer): void {
    const index = viewer.name === undefined ? this.#byNamespace : this.#byJob;
    const key =
      viewer.name === undefined ? viewer.namespace : jobKey(viewer.namespace, viewer.name);
    const viewers = index.get(key);
    if (viewers?.delete(viewer) !== true) return;
    if (viewers.size === 0) index.delete(key);
    this.#congested.delete(viewer);
    this.#size--;
  }

  /** Sends an update of one job to its viewers and to the viewers of its namespace. */
  publish(progress: JobProgress): void {
    const message: UpdateMessage = { type: 'update', job: progress };
    this.#fanOut(progress.namespace, progress.name, Buffer.from(JSON.stringify(message)));
  }

  publishRemoved(namespace: string, name: string): void {
    const message: RemovedMessage = { type: 'removed', namespace, name };
    this.#fanOut(namespace, name, Buffer.from(JSON.stringify(message)));
  }

  /** Closes every viewer, e.g. on shutdown. */
  closeAll(code: number, reason: string): void {
    for (const index of [this.#byJob, this.#byNamespace]) {
      for (const viewers of index.values())
        for (const viewer of viewers) viewer.socket.close(code, reason);
    }
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  #fanOut(namespace: string, name: string, data: Buffer): void {
    const key = jobKey(namespace, name);
    let sent = 0;
    let coalesced = 0;
    for (const viewers of [this.#byJob.get(key), this.#byNamespace.get(namespace)]) {
      if (viewers === undefined) continue;
      for (const viewer of viewers) {
        if (viewer.pending.size === 0 && viewer.socket.bufferedAmount < this.#highWater) {
          this.#cork(viewer);
          viewer.socket.send(data, TEXT_FRAME);
          sent++;
        } else if (this.#hold(viewer, key, data)) {
          coalesced++;
        }
      }
    }
    if (sent > 0 || coalesced > 0) this.#options.onDeliveries?.(sent, coalesced);
  }

  #cork(viewer: Viewer): void {
    if (viewer.corked || viewer.socket.cork === undefined) return;
    viewer.socket.cork();
    viewer.corked = true;
    if (this.#corked.push(viewer) === 1) setImmediate(() => this.#uncorkAll());
  }

  #uncorkAll(): void {
    const corked = this.#corked;
    this.#corked = [];
    for (const viewer of corked) {
      viewer.corked = false;
      viewer.socket.uncork?.();
    }
  }

  // Keeps `data` as the viewer's pending update of `key`; returns whether it replaced one.
  #hold(viewer: Viewer, key: string, data: Buffer): boolean {
    const replaced = viewer.pending.delete(key);
    viewer.pending.set(key, data);
    viewer.congestedSinceMs ??= this.#now();
    this.#congested.add(viewer);
    this.#flushTimer ??= setInterval(() => this.flush(), this.#flushIntervalMs);
    return replaced;
  }

  /** Sends pending updates to congested viewers whose sockets drained; closes those stuck too long. */
  flush(): void {
    const now = this.#now();
    let sent = 0;
    for (const viewer of this.#congested) {
      for (const [key, data] of viewer.pending) {
        if (viewer.socket.bufferedAmount >= this.#highWater) break;
        viewer.socket.send(data, TEXT_FRAME);
        viewer.pending.delete(key);
        sent++;
      }
      if (viewer.pending.size === 0) {
        viewer.congestedSinceMs = undefined;
        this.#congested.delete(viewer);
      } else if (now - viewer.congestedSinceMs! >= this.#congestedCloseMs) {
        this.#closeSlow(viewer);
      }
    }
    if (sent > 0) this.#options.onDeliveries?.(sent, 0);
    if (this.#congested.size === 0) {
      clearInterval(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }

  #closeSlow(viewer: Viewer): void {
    viewer.pending.clear();
    this.remove(viewer);
    viewer.socket.close(
      CLOSE_CODES.rateLimited,
      'viewer too slow: updates were not read for too long',
    );
    this.#options.onSlowViewerClosed?.(viewer);
  }
}

/**
 * Adapts a `ws` WebSocket for the viewer hub. NOTE: corking uses the socket that `ws`
 * keeps in its undocumented `_socket` field (present in ws 8); without it the hub sends
 * without corking.
 */
export function viewerSocketOf(ws: WebSocket): ViewerSocket {
  const raw = (ws as unknown as { _socket?: Partial<Duplex> })._socket;
  const socket: ViewerSocket = {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (data, options) => ws.send(data, options),
    close: (code, reason) => ws.close(code, reason),
  };
  const cork = raw?.cork;
  const uncork = raw?.uncork;
  if (typeof cork === 'function' && typeof uncork === 'function') {
    socket.cork = () => cork.call(raw);
    socket.uncork = () => uncork.call(raw);
  }
  return socket;
}
