/** Small helpers for waits that a signal can cut short; they reject with `WaitAborted`. */
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

/** A delay for attempt `n` (1-based) of a retry loop: doubling from `initialMs` to `maxMs`, with ±25 % jitter. */
export function retryPause(n: number, initialMs = 100, maxMs = 2000): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, n - 1));
  return base * (0.75 + Math.random() * 0.5);
}
