/**
 * Small helpers every package's tests used to copy: a virtual clock, an exact-error assertion, a free port and a wait
 * for a condition.
 * (core's own tests cannot import them: testkit depends on core, so core keeps its local copies.)
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Clock } from '@consortium/core';
import { expect } from 'vitest';

/** A clock whose sleeps advance virtual time at once and are recorded; `onSleep` runs before each sleep returns. */
export function virtualClock(
  start = 1_000,
  onSleep: () => Promise<void> = () => Promise.resolve(),
): Clock & { readonly sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
      await onSleep();
    },
  };
}

/** Runs `fn`, which must throw an instance of `type` with exactly `message`; returns the error. */
export function expectThrows<E extends Error>(
  fn: () => unknown,
  type: abstract new (...args: never[]) => E,
  message: string,
): E {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(type);
  expect((caught as E).message).toBe(message);
  return caught as E;
}

/** Waits until `check` holds, asking every `everyMs` (default 10); fails after `timeoutMs` (default 10 s) naming `what`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  { everyMs = 10, timeoutMs = 10_000 }: { readonly everyMs?: number; readonly timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A TCP port on 127.0.0.1 that the kernel handed out and that was closed again: free to bind, and nothing listens on
 * it (another process may take it before the caller binds it).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}
