/**
 * Seeding: the nodes plugin configs name (the libvirt plugin's configured hypervisors, the sandbox's simulated
 * ones) are created when missing, once per leadership, through the intake like any create, so they are validated,
 * audited and shown as jobs. An existing node is never changed: from then on the inventory is the truth.
 */
import type { JobRecord, SeedNode, Store } from '@consortium/core';
import { ConflictError, PRESENT_ATTR, toErrorInfo } from '@consortium/core';
import type winston from 'winston';
import type { Intake } from './intake.js';
import { exists } from './intake.js';
import type { Runnable } from './runnable.js';

/** Dependencies of the seeder. */
export interface SeederDeps {
  readonly store: Store;
  readonly intake: Pick<Intake, 'submit'>;
  readonly seeds: readonly { readonly plugin: string; readonly seed: SeedNode }[];
  readonly logger: winston.Logger;
}

/** The seeder role: leader-only; creates missing seed nodes when leadership is won, then idles. */
export class Seeder implements Runnable {
  readonly name = 'seeder';
  readonly needsLeader = true;

  /** Makes the seeder over its dependencies. */
  constructor(private readonly deps: SeederDeps) {}

  async run(): Promise<void> {
    await this.seed();
  }

  /** Queues a create for every seed node that does not exist; returns the jobs queued. */
  async seed(): Promise<JobRecord[]> {
    const { store, intake, seeds, logger } = this.deps;
    const queued: JobRecord[] = [];
    for (const { plugin, seed } of seeds) {
      try {
        if (exists(await store.getNode(seed.kind, seed.name))) continue;
        const updates = [
          { path: PRESENT_ATTR, op: 'set' as const, value: true },
          ...Object.entries(seed.attrs).map(([path, value]) => ({ path, op: 'set' as const, value })),
        ];
        queued.push(
          await intake.submit({
            kind: seed.kind,
            name: seed.name,
            action: 'create',
            updates,
            actor: `plugin:${plugin}`,
          }),
        );
        logger.info('seed node queued', { plugin, kind: seed.kind, name: seed.name });
      } catch (error) {
        // Another process's create of the same node is queued or running: that one makes it.
        if (error instanceof ConflictError) continue;
        logger.warn('seed node not created', {
          plugin,
          kind: seed.kind,
          name: seed.name,
          error: toErrorInfo(error).message,
        });
      }
    }
    return queued;
  }
}
