/**
 * The session lease of one coordinator (DESIGN.md §5: one session lease per process). Candidacies, lock waiters and
 * task claims are attached to it. It is kept alive on a stream every TTL/6 and declared lost as soon as no
 * keepalive sent in the last TTL/2 was acknowledged, when etcd says the lease is gone, or when an operation on it
 * fails because it is gone; etcd3's own `lost` only fires after 2×TTL, long after another member may have taken over.
 * A lost session is revoked (best effort) so that its keys go at once, and the next caller gets a fresh one.
 */
import { setMaxListeners } from 'node:events';
import { backoffDelay, CancelledError, LeaseLostError } from '@consortium/core';
import type { Logger } from '@consortium/core';
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { isRetryable, WaitAborted } from './etcd-errors.js';
import { closeStream } from './etcd-kv.js';
import type { EtcdKv } from './etcd-kv.js';
import { leaseHex } from './keys.js';
import { abortable, etcdRetry, isAborted, reconnectRetry, sleep } from './waits.js';

/** One granted lease and what hangs on it. */
export class Session {
  /** The lease id, decimal. */
  readonly leaseId: string;
  /** The lease id in 16 hex digits, as it appears in keys. */
  readonly leaseHex: string;
  readonly #lost = new AbortController();
  /**
   * When (monotonic `performance.now()`) the newest acknowledged keepalive, or the grant, was sent: the lease
   * lives at least TTL beyond it.
   */
  lastAckedSendAt: number;

  constructor(leaseId: string, grantSentAt: number) {
    this.leaseId = leaseId;
    this.leaseHex = leaseHex(leaseId);
    this.lastAckedSendAt = grantSentAt;
    // Every lock, leadership and claim held on the session listens here until it is released: a master resuming
    // its jobs holds one lock per job, so more than node's default of 10 listeners is normal, not a leak.
    setMaxListeners(0, this.#lost.signal);
  }

  /** Aborts, with a `LeaseLostError`, when the session can no longer be trusted. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  get alive(): boolean {
    return !this.#lost.signal.aborted;
  }

  /** Marks the session lost; returns false when it already was. */
  markLost(reason: LeaseLostError): boolean {
    if (this.#lost.signal.aborted) return false;
    this.#lost.abort(reason);
    return true;
  }
}

/** Options of a `SessionKeeper`. */
export interface SessionKeeperOptions {
  readonly memberId: string;
  readonly ttlSeconds: number;
  readonly logger: Pick<Logger, 'debug' | 'info' | 'warn'>;
  /** Aborts when the coordinator closes. */
  readonly closed: AbortSignal;
}

/** Grants, keeps alive and ends the coordinator's session. */
export class SessionKeeper {
  readonly #kv: EtcdKv;
  readonly #options: SessionKeeperOptions;
  #current: Session | undefined;
  #granting: Promise<Session> | undefined;

  constructor(kv: EtcdKv, options: SessionKeeperOptions) {
    this.#kv = kv;
    this.#options = options;
  }

  /** The live session, if there is one. */
  get current(): Session | undefined {
    return this.#current?.alive === true ? this.#current : undefined;
  }

  /**
   * The live session, granting a new lease when there is none; retries while etcd is unavailable. Rejects with
   * `WaitAborted` when `signal` aborts or the coordinator closes, and with a non-retryable error as it is.
   */
  acquire(signal: AbortSignal): Promise<Session> {
    const current = this.current;
    if (current !== undefined) return Promise.resolve(current);
    this.#granting ??= this.#grant().finally(() => {
      this.#granting = undefined;
    });
    return abortable(this.#granting, [signal, this.#options.closed]);
  }

  /** Declares `session` lost and revokes its lease in the background so that its keys go at once. */
  end(session: Session, why: string): void {
    const reason = new LeaseLostError(`Session of member ${this.#options.memberId} lost: ${why}`);
    if (!session.markLost(reason)) return;
    if (this.#current === session) this.#current = undefined;
    this.#options.logger.warn('etcd session lost', {
      member: this.#options.memberId,
      lease: session.leaseHex,
      why,
    });
    this.#kv.revoke(session.leaseId, this.#ttlMs()).catch((error: unknown) => {
      this.#options.logger.debug('Revoking a lost session failed; it expires by itself', {
        lease: session.leaseHex,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }

  /** Ends the current session for good (close): marks it lost with `reason` and revokes its lease. */
  async close(reason: LeaseLostError, timeoutMs: number): Promise<void> {
    const session = this.#current;
    this.#current = undefined;
    if (session === undefined || !session.markLost(reason)) return;
    try {
      await this.#kv.revoke(session.leaseId, timeoutMs);
    } catch (error) {
      this.#options.logger.debug('Revoking the session on close failed; it expires by itself', {
        lease: session.leaseHex,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #ttlMs(): number {
    return this.#options.ttlSeconds * 1000;
  }

  async #grant(): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      if (this.#options.closed.aborted) throw new WaitAborted();
      const sentAt = performance.now();
      try {
        const leaseId = await this.#kv.grant(this.#options.ttlSeconds);
        const session = new Session(leaseId, sentAt);
        if (isAborted(this.#options.closed)) {
          await this.#kv.revoke(leaseId, 1000).catch(() => undefined);
          throw new WaitAborted();
        }
        this.#current = session;
        this.#options.logger.debug('etcd session granted', {
          member: this.#options.memberId,
          lease: session.leaseHex,
        });
        this.#keepAlive(session);
        return session;
      } catch (error) {
        if (error instanceof WaitAborted || !isRetryable(error)) throw error;
        this.#options.logger.debug('Granting a session lease failed; retrying', {
          error: error instanceof Error ? error.message : String(error),
        });
        await sleep(backoffDelay(etcdRetry, attempt), this.#options.closed);
      }
    }
  }

  /** Keeps `session` alive until it is lost; watches that acknowledgements keep coming. */
  #keepAlive(session: Session): void {
    const ttlMs = this.#ttlMs();
    const monitor = setInterval(
      () => {
        const silentFor = Math.round(performance.now() - session.lastAckedSendAt);
        if (silentFor > ttlMs / 2) this.end(session, `no keepalive acknowledged for ${silentFor} ms`);
      },
      Math.max(20, Math.min(250, ttlMs / 20)),
    );
    monitor.unref();
    session.lost.addEventListener(
      'abort',
      () => {
        clearInterval(monitor);
      },
      { once: true },
    );
    void this.#keepAliveStreams(session);
  }

  async #keepAliveStreams(session: Session): Promise<void> {
    const intervalMs = (this.#options.ttlSeconds * 1000) / 6;
    for (let attempt = 1; session.alive; attempt++) {
      let stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
      try {
        stream = await this.#kv.keepAliveStream();
      } catch {
        await sleep(backoffDelay(reconnectRetry, attempt), session.lost).catch(() => undefined);
        continue;
      }
      const failure = await this.#runKeepAlive(session, stream, intervalMs);
      if (isAborted(session.lost)) return;
      this.#options.logger.debug('etcd keepalive stream failed; reopening', {
        lease: session.leaseHex,
        error: failure.message,
      });
      await sleep(backoffDelay(reconnectRetry, attempt), session.lost).catch(() => undefined);
    }
  }

  /** Runs one keepalive stream; resolves with why it ended (or a placeholder once the session is lost). */
  #runKeepAlive(
    session: Session,
    stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>,
    intervalMs: number,
  ): Promise<Error> {
    return new Promise((resolve) => {
      const sentAt: number[] = [];
      let done = false;
      const finish = (error: Error): void => {
        if (done) return;
        done = true;
        clearInterval(timer);
        session.lost.removeEventListener('abort', onLost);
        closeStream(stream);
        resolve(error);
      };
      const onLost = (): void => {
        finish(new CancelledError('session lost'));
      };
      const send = (): void => {
        sentAt.push(performance.now());
        try {
          stream.write({ ID: session.leaseId });
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      };
      stream.on('data', (response) => {
        const sent = sentAt.shift();
        if (response.TTL === '0') {
          finish(new Error('lease expired'));
          this.end(session, 'etcd reports the lease expired or revoked');
          return;
        }
        if (sent !== undefined && sent > session.lastAckedSendAt) session.lastAckedSendAt = sent;
      });
      stream.on('error', (error) => {
        finish(error);
      });
      stream.on('end', () => {
        finish(new Error('keepalive stream ended'));
      });
      session.lost.addEventListener('abort', onLost, { once: true });
      const timer = setInterval(send, intervalMs);
      timer.unref();
      if (session.alive) send();
      else onLost();
    });
  }
}
