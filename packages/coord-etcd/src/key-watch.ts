/**
 * A watch on a key or prefix that survives disconnects and compaction: it remembers the last revision it applied,
 * resumes from the next one on a new stream, and when that history was compacted asks its owner to relist.
 * It runs on the connection's own shared stream (`WatchHub`) rather than etcd3's watch manager, whose reconnect can
 * skip events (it resumes from the creation header, not from what was delivered) and which drops a watcher for good
 * on compaction.
 */
import { backoffDelay } from '@consortium/core';
import type { Logger } from '@consortium/core';
import { FilterType } from 'etcd3';
import type { IWatchCreateRequest, IWatchResponse } from 'etcd3';
import { translateEtcdError } from './etcd-errors.js';
import { prefixEnd } from './etcd-kv.js';
import type { EtcdKv, KeyValue } from './etcd-kv.js';
import { reconnectRetry } from './waits.js';

/** Pauses between watch reconnects: the reconnect policy up to 1 s. */
const watchRetry = { ...reconnectRetry, maxMs: 1000 };

/** One change seen by a watch. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  /** The revision of the change (the key's mod revision for a put, the deleting revision for a delete). */
  readonly revision: bigint;
}

/** Options of a `KeyWatch`. */
export interface KeyWatchOptions {
  /** The key, or the prefix when `prefix` is set, relative to the coordinator's prefix. */
  readonly key: string;
  readonly prefix?: boolean;
  /** The first revision to deliver; default: changes after the first stream is created. */
  readonly startRevision?: bigint;
  /** Deliver only puts or only deletes. */
  readonly only?: 'put' | 'delete';
  /** Receives the changes of each response, in revision order. */
  readonly onEvents: (events: readonly WatchEvent[]) => void;
  /**
   * The history from the next revision was compacted: relist and return the revision to resume from, or undefined
   * to resume from the present. Without it the watch resumes at the compaction revision.
   */
  readonly onCompacted?: (compactRevision: bigint) => Promise<bigint | undefined>;
  /** A stream failed; the watch resumes by itself. */
  readonly onInterrupted?: (error: Error) => void;
  /** A stream is established; changes from `nextRevision` on will be delivered. */
  readonly onConnected?: (nextRevision: bigint) => void;
  readonly logger: Pick<Logger, 'debug' | 'warn'>;
}

type StreamOutcome =
  | { readonly kind: 'closed' }
  | { readonly kind: 'compacted'; readonly compactRevision: bigint }
  | { readonly kind: 'failed'; readonly error: Error; readonly connected: boolean };

/** A resilient watch; starts at construction, stops on `close()`. */
export class KeyWatch {
  readonly #kv: EtcdKv;
  readonly #options: KeyWatchOptions;
  #next: bigint | undefined;
  #closed = false;
  #stopStream: (() => void) | undefined;
  #stopPause: (() => void) | undefined;

  constructor(kv: EtcdKv, options: KeyWatchOptions) {
    this.#kv = kv;
    this.#options = options;
    this.#next = options.startRevision;
    void this.#run();
  }

  /** The next revision this watch will deliver; undefined until it first connects. */
  get nextRevision(): bigint | undefined {
    return this.#next;
  }

  /** Stops the watch; safe to call more than once. */
  close(): void {
    this.#closed = true;
    this.#stopStream?.();
    this.#stopPause?.();
  }

  /** Read through a method: the flag changes while the loop awaits. */
  #isClosed(): boolean {
    return this.#closed || this.#kv.closed;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#isClosed()) {
      const outcome = await this.#stream();
      if (this.#isClosed() || outcome.kind === 'closed') return;
      if (outcome.kind === 'compacted') {
        try {
          this.#next = await this.#resumeAfterCompaction(outcome.compactRevision);
          failures = 0;
          continue;
        } catch (error) {
          this.#options.logger.debug('etcd watch could not relist after compaction; retrying', {
            key: this.#options.key,
            error: error instanceof Error ? error.message : String(error),
          });
          failures += 1;
        }
      } else {
        failures = outcome.connected ? 1 : failures + 1;
        this.#options.onInterrupted?.(outcome.error);
      }
      await this.#pause(backoffDelay(watchRetry, failures));
    }
  }

  async #resumeAfterCompaction(compactRevision: bigint): Promise<bigint | undefined> {
    this.#options.logger.warn('etcd watch history was compacted; relisting', {
      key: this.#options.key,
      from: String(this.#next),
      compactRevision: String(compactRevision),
    });
    if (this.#options.onCompacted === undefined) return compactRevision;
    return this.#options.onCompacted(compactRevision);
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#stopPause = done;
    });
  }

  /** Runs one watch on the connection's shared stream until it fails, is compacted or the watch closes. */
  #stream(): Promise<StreamOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      let connected = false;
      const settle = (outcome: StreamOutcome): void => {
        if (settled) return;
        settled = true;
        this.#stopStream = undefined;
        watch.close();
        resolve(outcome);
      };
      const fail = (error: Error): void => {
        settle({ kind: 'failed', error, connected });
      };
      const request: IWatchCreateRequest = { ...this.#range(), progress_notify: true };
      if (this.#next !== undefined) request.start_revision = String(this.#next);
      if (this.#options.only === 'put') request.filters = [FilterType.Nodelete];
      if (this.#options.only === 'delete') request.filters = [FilterType.Noput];
      const watch = this.#kv.watchHub.watch(request, {
        onResponse: (response) => {
          if (settled) return;
          if (response.created) {
            connected = true;
            this.#next ??= BigInt(response.header.revision) + 1n;
            this.#options.onConnected?.(this.#next);
          }
          if (response.canceled) {
            if (response.compact_revision !== '0' && response.compact_revision !== '') {
              settle({ kind: 'compacted', compactRevision: BigInt(response.compact_revision) });
            } else {
              fail(new Error(`etcd cancelled the watch: ${response.cancel_reason || 'no reason given'}`));
            }
            return;
          }
          if (!response.created) this.#apply(response);
        },
        onFailure: (error) => {
          fail(translateEtcdError(error, `Watching ${this.#options.key}`));
        },
      });
      this.#stopStream = () => {
        settle({ kind: 'closed' });
      };
    });
  }

  #range(): Pick<IWatchCreateRequest, 'key' | 'range_end'> {
    const key = this.#kv.key(this.#options.key);
    return this.#options.prefix === true ? { key, range_end: prefixEnd(key) } : { key };
  }

  #apply(response: IWatchResponse): void {
    if (response.events.length === 0) {
      // A progress notification: every change up to the header revision has been delivered.
      const progressed = BigInt(response.header.revision) + 1n;
      if (this.#next === undefined || progressed > this.#next) this.#next = progressed;
      return;
    }
    const events = response.events.map((event): WatchEvent => {
      const kv = this.#kv.keyValue(event.kv);
      const type = event.type.toLowerCase() === 'delete' ? 'delete' : 'put';
      return { type, kv, revision: BigInt(event.kv.mod_revision) };
    });
    const last = events[events.length - 1];
    if (last !== undefined) this.#next = last.revision + 1n;
    try {
      this.#options.onEvents(events);
    } catch (error) {
      this.#options.logger.warn('etcd watch listener failed', {
        key: this.#options.key,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
