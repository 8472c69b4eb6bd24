/**
 * First-come-first-served turns per name inside one process. One session lease means one waiter key per lease for a
 * lock or election, so two callers in the same process must not stand at once; they take turns here, in arrival
 * order, and only the caller whose turn it is stands in etcd.
 */
import { WaitAborted } from './etcd-errors.js';

interface Line {
  busy: boolean;
  readonly waiting: (() => void)[];
}

/** Per-name FIFO turns. */
export class LocalTurns {
  readonly #lines = new Map<string, Line>();

  /** Waits for the turn on `name`; resolves with the function that passes it on (idempotent). */
  take(name: string, signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(new WaitAborted());
    let line = this.#lines.get(name);
    if (line === undefined) {
      line = { busy: false, waiting: [] };
      this.#lines.set(name, line);
    }
    const own = line;
    const passOn = this.#passOn(name, own);
    if (!own.busy) {
      own.busy = true;
      return Promise.resolve(passOn);
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(passOn);
      };
      const onAbort = (): void => {
        const index = own.waiting.indexOf(grant);
        if (index >= 0) own.waiting.splice(index, 1);
        reject(new WaitAborted());
      };
      own.waiting.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #passOn(name: string, line: Line): () => void {
    let passed = false;
    return () => {
      if (passed) return;
      passed = true;
      const next = line.waiting.shift();
      if (next !== undefined) {
        next();
        return;
      }
      line.busy = false;
      if (this.#lines.get(name) === line) this.#lines.delete(name);
    };
  }
}
