/**
 * Notifications over etcd: `notify` puts `notify/<topic>` on a short-lived lease (so topic keys clean themselves
 * up), and `subscribe` watches the puts under `notify/<prefix>`. Notifications sent while one is in flight go
 * together as one transaction of puts (`TxnBatcher`; two of one topic never share one, so none is lost), so that
 * many jobs announcing their steps at once pay one consensus round rather than one each. A subscription resumes from the last revision it
 * delivered after a disconnect; when that history was compacted it relists the topic keys changed since and
 * delivers their current values before watching on, so a subscriber misses at most intermediate values.
 */
import { InputError, LeaseLostError, PayloadTooLargeError, toErrorInfo } from '@consortium/core';
import type { JsonValue } from '@consortium/core';
import { assertOpen } from './context.js';
import type { CoordinatorContext } from './context.js';
import type { KeyValue } from './etcd-kv.js';
import { notifyRoot } from './keys.js';
import { KeyWatch } from './key-watch.js';

/** Largest notification; they are signals, not data. */
const maxMessageBytes = 64 * 1024;

/** A notification lease and when it was granted. */
interface NotifyLease {
  readonly id: string;
  readonly grantedAt: number;
}

/** Publishing and subscribing for one coordinator. */
export class Notifications {
  readonly #context: CoordinatorContext;
  readonly #ttlSeconds: number;
  readonly #subscriptions = new Set<() => void>();
  #lease: NotifyLease | undefined;
  #granting: Promise<NotifyLease> | undefined;

  constructor(context: CoordinatorContext, ttlSeconds: number) {
    this.#context = context;
    this.#ttlSeconds = ttlSeconds;
  }

  /** Puts `message` on `topic`; throws `InputError` for an empty topic, `PayloadTooLargeError` for a big message. */
  async notify(topic: string, message: JsonValue): Promise<void> {
    assertOpen(this.#context);
    if (typeof topic !== 'string' || topic === '')
      throw new InputError('Notification topic must be a non-empty string');
    const value = JSON.stringify({ m: message });
    if (Buffer.byteLength(value) > maxMessageBytes) {
      throw new PayloadTooLargeError(`Notification on ${topic} is larger than ${maxMessageBytes} bytes`);
    }
    for (let attempt = 1; ; attempt++) {
      const lease = await this.#currentLease();
      try {
        // An unguarded put: applying twice only repeats a notification, which at-least-once delivery allows.
        const key = notifyRoot + topic;
        await this.#context.writes.submit({
          what: `Notifying ${topic}`,
          keys: [key],
          compares: [],
          success: [this.#context.kv.put(key, value, lease.id)],
          checks: [],
          held: () => true,
        });
        return;
      } catch (error) {
        if (!(error instanceof LeaseLostError) || attempt > 1) throw error;
        if (this.#lease === lease) this.#lease = undefined;
      }
    }
  }

  /** Subscribes `listener` to the topics under `prefix`; returns the unsubscribe function (idempotent). */
  subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void {
    assertOpen(this.#context);
    const { kv, logger } = this.#context;
    const root = notifyRoot + prefix;
    let active = true;
    const deliver = (entry: KeyValue): void => {
      if (!active) return;
      const topic = entry.key.slice(notifyRoot.length);
      let message: JsonValue;
      try {
        message = (JSON.parse(entry.value.toString('utf8')) as { m: JsonValue }).m;
      } catch (error) {
        logger.warn('Ignoring a malformed notification', { topic, error: toErrorInfo(error) });
        return;
      }
      try {
        listener(topic, message);
      } catch (error) {
        logger.error('Notification listener failed', { topic, prefix, error: toErrorInfo(error) });
      }
    };
    const watch: KeyWatch = new KeyWatch(kv, {
      key: root,
      prefix: true,
      only: 'put',
      onEvents: (events) => {
        for (const event of events) deliver(event.kv);
      },
      onCompacted: async () => {
        const from = watch.nextRevision;
        if (from === undefined) return undefined;
        const changed = await kv.range(root, { prefix: true, minModRevision: from });
        const inOrder = [...changed.kvs].sort((x, y) =>
          BigInt(x.modRevision) < BigInt(y.modRevision) ? -1 : 1,
        );
        for (const entry of inOrder) deliver(entry);
        return changed.revision + 1n;
      },
      logger,
    });
    const unsubscribe = (): void => {
      if (!active) return;
      active = false;
      watch.close();
      this.#subscriptions.delete(unsubscribe);
    };
    this.#subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  /** Ends every subscription. */
  close(): void {
    for (const unsubscribe of [...this.#subscriptions]) unsubscribe();
  }

  /** A lease young enough that keys put on it live a while; a fresh one every TTL/2, never kept alive. */
  async #currentLease(): Promise<NotifyLease> {
    const lease = this.#lease;
    if (lease !== undefined && Date.now() - lease.grantedAt < (this.#ttlSeconds * 1000) / 2) return lease;
    this.#granting ??= (async () => {
      const grantedAt = Date.now();
      const id = await this.#context.kv.grant(this.#ttlSeconds);
      const granted = { id, grantedAt };
      this.#lease = granted;
      return granted;
    })().finally(() => {
      this.#granting = undefined;
    });
    return this.#granting;
  }
}
