/**
 * Roles as runnables (controller-runtime's manager): each runs until its signal aborts; a runnable that needs
 * the leader runs only while this process holds leadership, and is restarted when leadership is won again.
 */
import type { Coordinator } from '@consortium/core';
import type winston from 'winston';

/** Whether a signal has aborted; a call, so that checks after an await are not narrowed away. */
export function stopped(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Lifecycle of a hosted runnable. */
export type RunnableState = 'waiting-for-leadership' | 'running' | 'stopped';

/** One part of a role: the web server, the master's job loop, a worker pool. */
export interface Runnable {
  readonly name: string;
  readonly needsLeader: boolean;
  /**
   * Runs until `signal` aborts, then returns after cleaning up. Leader-only runnables get the leadership's fencing
   * token, to guard their writes with.
   */
  run(signal: AbortSignal, leadership?: { readonly token: string }): Promise<void>;
}

/** Runs every runnable until `signal` aborts; the leader-only ones together, while this process leads `master`. */
export async function runAll(
  runnables: readonly Runnable[],
  coordinator: Coordinator,
  logger: winston.Logger,
  signal: AbortSignal,
): Promise<void> {
  const leaderOnly = runnables.filter((r) => r.needsLeader);
  const names = leaderOnly.map((r) => r.name).join(', ');
  const lead = async (): Promise<void> => {
    while (!stopped(signal)) {
      let held;
      try {
        held = await coordinator.campaign('master', signal);
      } catch (error) {
        if (stopped(signal)) return;
        logger.error('campaign failed; retrying', { runnables: names, error: (error as Error).message });
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      logger.info('leadership acquired', { runnables: names, token: held.token });
      const both = AbortSignal.any([signal, held.lost]);
      try {
        await Promise.all(leaderOnly.map((r) => r.run(both, { token: held.token })));
      } finally {
        await held.release();
      }
      if (!stopped(signal)) logger.warn('leadership lost; campaigning again', { runnables: names });
    }
  };
  await Promise.all([
    ...runnables.filter((r) => !r.needsLeader).map((r) => r.run(signal)),
    ...(leaderOnly.length > 0 ? [lead()] : []),
  ]);
}
