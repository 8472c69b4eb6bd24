/** Small helpers for waits that a signal can cut short; they reject with `WaitAborted`. */
import type { BackoffPolicy } from '@consortium/core';
import { WaitAborted } from './etcd-errors.js';

/** Waits `ms`; rejects with `WaitAborted` when `signal` aborts first. The timer does not keep the process up. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new WaitAborted());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new WaitAborted());
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Settles like `promise`, or rejects with `WaitAborted` as soon as any of `signals` aborts. */
export function abortable<T>(promise: Promise<T>, signals: readonly AbortSignal[]): Promise<T> {
  if (signals.some((signal) => signal.aborted)) {
    promise.catch(() => undefined);
    return Promise.reject(new WaitAborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      cleanup();
      reject(new WaitAborted());
    };
    const cleanup = (): void => {
      for (const signal of signals) signal.removeEventListener('abort', onAbort);
    };
    for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Reads `signal.aborted` afresh; TypeScript would otherwise keep a narrowing from before an await. */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Pauses of the coordinator's retry loops (requests, repairs): 0.1 s doubling to 2 s, ±25 % so retriers spread. */
export const etcdRetry: BackoffPolicy = { initialMs: 100, factor: 2, maxMs: 2000, jitter: 0.25 };

/** Pauses of the session's and watches' reconnect loops: 50 ms doubling to 0.5 s (1 s for watches), jittered. */
export const reconnectRetry: BackoffPolicy = { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.25 };
