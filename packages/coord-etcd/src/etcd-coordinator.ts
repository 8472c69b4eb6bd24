/** The etcd coordinator: cluster mode's elections, locks, queues and notifications (DESIGN.md §5). */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { rootCertificates } from 'node:tls';
import {
  backoffDelay,
  BackendError,
  BackendUnavailableError,
  DEFAULT_TASK_RETRY_BACKOFF,
  InputError,
  LeaseLostError,
  validateBackoff,
} from '@consortium/core';
import type { BackoffPolicy, Coordinator, Held, JsonValue, Logger, Queue } from '@consortium/core';
import { assertOpen, closedError, waitError } from './context.js';
import { TxnBatcher } from './txn-batcher.js';
import type { CoordinatorContext } from './context.js';
import { contend } from './contention.js';
import { refusalOf, WaitAborted } from './etcd-errors.js';
import { EtcdKv } from './etcd-kv.js';
import { EtcdQueue } from './etcd-queue.js';
import { electionRoot, lockRoot, SequenceClock } from './keys.js';
import { LocalTurns } from './local-turns.js';
import { Notifications } from './notifications.js';
import { SessionKeeper } from './session.js';
import { etcdRetry, sleep } from './waits.js';

/** PEM contents (not paths) of a TLS client: the CA to verify etcd with, and this member's certificate and key. */
export interface EtcdTls {
  /** Default: the CAs Node trusts. */
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Options of an `EtcdCoordinator`. */
export interface EtcdCoordinatorOptions {
  /** etcd client URLs, e.g. `http://10.0.0.1:2379`. */
  readonly endpoints: string | readonly string[];
  /** The cluster's name, used in the default prefix; default `default`. */
  readonly cluster?: string;
  /** Key prefix of everything this coordinator writes; default `/consortium/<cluster>/`. */
  readonly prefix?: string;
  /** Unique per process; default `<hostname>-<pid>-<random>`. */
  readonly memberId?: string;
  /** TTL of the session lease; a member that stops keeping it alive loses its holds within it. Default 10. */
  readonly leaseTtlSeconds?: number;
  /** Backoff of tasks this member fails; default `DEFAULT_TASK_RETRY_BACKOFF` (1 s doubling to 5 minutes). */
  readonly retryBackoff?: BackoffPolicy;
  /** Receives what goes wrong in the background; default warnings and errors to the console. */
  readonly logger?: Logger;
  /** Deadline of each etcd request; default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** How often waiting claims reconcile a queue's claims in full; default 30 s. */
  readonly reconcileIntervalMs?: number;
  /** TTL of the lease notification keys are put on; default 10. */
  readonly notifyTtlSeconds?: number;
  /** TLS for `https://` endpoints, with a client certificate when etcd runs with `--client-cert-auth`. */
  readonly tls?: EtcdTls;
  /** etcd's own authentication (`etcdctl auth enable`): the user and its password. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** Pauses between start-up checks while etcd is unreachable: 0.2 s doubling to 2 s, jittered. */
const accessRetry = { ...etcdRetry, initialMs: 200 };

const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, meta) => {
    console.warn(message, meta ?? '');
  },
  error: (message, meta) => {
    console.error(message, meta ?? '');
  },
};

/**
 * A coordinator over etcd, with one session lease per process kept alive on a stream. Elections and locks wait in
 * line by create revision under `master/elect/<election>/` and `locks/<key>/`; queues live under `q/<queue>/`;
 * notifications under `notify/`. The constructor throws `InputError` for bad options; calls after `close()` throw
 * `CancelledError`; etcd failures surface as `BackendUnavailableError` (retryable) or `BackendError`.
 */
export class EtcdCoordinator implements Coordinator {
  /** This member's id. */
  readonly memberId: string;
  /** The key prefix, ending in `/`. */
  readonly prefix: string;
  readonly #kv: EtcdKv;
  readonly #closed = new AbortController();
  readonly #context: CoordinatorContext;
  readonly #sessions: SessionKeeper;
  readonly #notifications: Notifications;
  readonly #queues = new Map<string, EtcdQueue>();
  readonly #backoff: BackoffPolicy;
  readonly #reconcileIntervalMs: number;
  readonly #requestTimeoutMs: number;
  readonly #clock = new SequenceClock();
  readonly #endpoints: readonly string[];
  readonly #username: string | undefined;
  readonly #logger: Logger;
  #closing: Promise<void> | undefined;

  constructor(options: EtcdCoordinatorOptions) {
    const endpoints = typeof options.endpoints === 'string' ? [options.endpoints] : [...options.endpoints];
    if (endpoints.length === 0) throw new InputError('EtcdCoordinator needs at least one endpoint');
    // Every held lock, claim and wait listens for the close until it ends (one per job a master drives): many
    // listeners are normal here, not a leak.
    setMaxListeners(0, this.#closed.signal);
    const ttl = options.leaseTtlSeconds ?? 10;
    if (!Number.isInteger(ttl) || ttl < 2)
      throw new InputError(`leaseTtlSeconds must be an integer >= 2, got ${ttl}`);
    const notifyTtl = options.notifyTtlSeconds ?? 10;
    if (!Number.isInteger(notifyTtl) || notifyTtl < 2) {
      throw new InputError(`notifyTtlSeconds must be an integer >= 2, got ${notifyTtl}`);
    }
    this.#requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? 5000);
    this.#reconcileIntervalMs = positive('reconcileIntervalMs', options.reconcileIntervalMs ?? 30_000);
    this.#backoff = validateBackoff(options.retryBackoff ?? DEFAULT_TASK_RETRY_BACKOFF, 'retryBackoff');
    const cluster = options.cluster ?? 'default';
    const prefix = options.prefix ?? `/consortium/${cluster}/`;
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.memberId = options.memberId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (this.memberId === '') throw new InputError('memberId must not be empty');
    const logger = options.logger ?? consoleLogger;
    this.#logger = logger;
    this.#endpoints = endpoints;
    this.#username = options.auth?.username;
    const credentials = tlsCredentials(endpoints, options.tls);
    if (options.auth !== undefined && (options.auth.username === '' || options.auth.password === '')) {
      throw new InputError('etcd authentication needs a user name and a password');
    }
    this.#kv = new EtcdKv({
      endpoints,
      prefix: this.prefix,
      requestTimeoutMs: this.#requestTimeoutMs,
      ...(credentials === undefined ? {} : { credentials }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
    });
    this.#sessions = new SessionKeeper(this.#kv, {
      memberId: this.memberId,
      ttlSeconds: ttl,
      logger,
      closed: this.#closed.signal,
    });
    this.#context = {
      kv: this.#kv,
      sessions: this.#sessions,
      turns: new LocalTurns(),
      writes: new TxnBatcher(this.#kv, 'Writing'),
      memberId: this.memberId,
      logger,
      closed: this.#closed.signal,
    };
    this.#notifications = new Notifications(this.#context, notifyTtl);
  }

  /** The current session lease id (decimal), for diagnostics and tests; undefined while there is none. */
  get leaseId(): string | undefined {
    return this.#sessions.current?.leaseId;
  }

  /**
   * How long ago the newest acknowledged keepalive (or the grant) of the session lease was sent, in ms; undefined
   * while there is no session. The lease is given up when this passes half its TTL: watch it as a metric.
   */
  get keepaliveLagMs(): number | undefined {
    const session = this.#sessions.current;
    return session === undefined ? undefined : Math.round(performance.now() - session.lastAckedSendAt);
  }

  /**
   * Checks, before a process starts its roles, that etcd lets this member in: one read under the prefix, through the
   * TLS handshake and authentication every later call makes. While etcd is merely unreachable it retries, logging
   * a warning, for up to `timeoutMs` (default 30 s), then throws `BackendUnavailableError`. Throws `BackendError` at
   * once, in one line naming the endpoint, when etcd refuses: the TLS handshake fails either way (a wrong CA, no
   * client certificate), the password is wrong, or the user may not read the prefix. `CancelledError` on close.
   */
  async verifyAccess(timeoutMs = 30_000): Promise<void> {
    assertOpen(this.#context);
    const endpoint = this.#endpoints.join(', ');
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#kv.range('', { prefix: true, countOnly: true });
        return;
      } catch (error) {
        const refusal = refusalOf(error, {
          endpoint,
          prefix: this.prefix,
          ...(this.#username === undefined ? {} : { username: this.#username }),
        });
        if (refusal !== undefined) throw new BackendError(refusal, { cause: error });
        if (!(error instanceof BackendUnavailableError)) throw error;
        if (performance.now() >= deadline) {
          throw new BackendUnavailableError(
            `etcd at ${endpoint} is unreachable after ${Math.round(timeoutMs / 1000)} s: ${oneLine(error.message)}`,
            { cause: error },
          );
        }
        this.#logger.warn('etcd is unreachable; retrying', { endpoint, error: oneLine(error.message) });
        await sleep(backoffDelay(accessRetry, attempt), this.#closed.signal).catch(() => undefined);
        assertOpen(this.#context);
      }
    }
  }

  /** Waits until this member leads `election`; rejects with `CancelledError` when `signal` aborts or on close. */
  async campaign(election: string, signal: AbortSignal): Promise<Held> {
    const cancelled = `Campaign for election "${election}" cancelled`;
    return this.#contend(election, signal, cancelled, {
      root: electionRoot(election),
      describe: `election "${election}"`,
      releasedMessage: `Leadership of election "${election}" released`,
    });
  }

  /** Waits until this member holds lock `key`; rejects with `CancelledError` when `signal` aborts or on close. */
  async lock(key: string, signal: AbortSignal): Promise<Held> {
    const cancelled = `Waiting for lock "${key}" cancelled`;
    return this.#contend(key, signal, cancelled, {
      root: lockRoot(key),
      describe: `lock "${key}"`,
      releasedMessage: `Lock "${key}" released`,
    });
  }

  /** The queue `name`, shared by every member with the same prefix. */
  queue(name: string): Queue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new EtcdQueue(this.#context, name, {
        backoff: this.#backoff,
        reconcileIntervalMs: this.#reconcileIntervalMs,
        clock: this.#clock,
      });
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Publishes `message` on `topic` to every subscriber connected; throws `CancelledError` once closed. */
  notify(topic: string, message: JsonValue): Promise<void> {
    return this.#notifications.notify(topic, message);
  }

  /** Subscribes to topics under `prefix`; throws `CancelledError` once closed. */
  subscribe(prefix: string, listener: (topic: string, message: JsonValue) => void): () => void {
    return this.#notifications.subscribe(prefix, listener);
  }

  /**
   * Ends this member: pending waits reject with `CancelledError`, held leadership and locks abort `lost` with
   * `LeaseLostError`, and the session lease is revoked so that others take over at once. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed.abort(closedError(this.#context));
      this.#notifications.close();
      for (const queue of this.#queues.values()) queue.close();
      await this.#sessions.close(
        new LeaseLostError(`Session of member ${this.memberId} closed`),
        Math.min(this.#requestTimeoutMs, 2000),
      );
      this.#kv.close();
    })();
    return this.#closing;
  }

  async #contend(
    name: string,
    signal: AbortSignal,
    cancelled: string,
    spec: Parameters<typeof contend>[1],
  ): Promise<Held> {
    if (signal.aborted) throw waitError(this.#context, new WaitAborted(), signal, cancelled);
    assertOpen(this.#context);
    if (typeof name !== 'string' || name === '')
      throw new InputError('Election and lock names must be non-empty');
    try {
      return await contend(this.#context, spec, signal);
    } catch (error) {
      throw waitError(this.#context, error, signal, cancelled);
    }
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function pem(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/**
 * etcd3's credentials for `tls`; undefined without it. etcd3 applies them to every endpoint, so an `http://` endpoint
 * beside them is refused rather than silently spoken to over TLS; a certificate needs its key and the other way round.
 */
function tlsCredentials(
  endpoints: readonly string[],
  tls: EtcdTls | undefined,
): { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer } | undefined {
  if (tls === undefined) return undefined;
  const plain = endpoints.find((endpoint) => !endpoint.startsWith('https://'));
  if (plain !== undefined)
    throw new InputError(`etcd TLS is configured but endpoint ${plain} is not https://`);
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InputError('an etcd client certificate needs its key, and a key its certificate');
  }
  return {
    rootCertificate: tls.ca === undefined ? Buffer.from(rootCertificates.join('\n'), 'utf8') : pem(tls.ca),
    ...(tls.cert === undefined ? {} : { certChain: pem(tls.cert) }),
    ...(tls.key === undefined ? {} : { privateKey: pem(tls.key) }),
  };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new InputError(`${name} must be a positive number, got ${value}`);
  return value;
}
