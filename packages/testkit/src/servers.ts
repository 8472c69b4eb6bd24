/** What the harnesses that start real servers (etcd, PostgreSQL, PowerDNS) share: child bookkeeping and waits. */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';

/** Servers still running, with the directory to remove after each (if any): killed when the test process exits. */
const running = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;

/** Kills `server` (and removes `dir`) if the test process exits while it still runs, so that none outlives it. */
export function killOnExit(server: ChildProcess, dir?: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [child, path] of running) {
        child.kill('SIGKILL');
        if (path !== undefined) rmSync(path, { recursive: true, force: true });
      }
    });
  }
  running.set(server, dir);
  server.once('exit', () => {
    running.delete(server);
  });
}

/** True when `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `child` has exited (at once when it already has). */
export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
}
