/**
 * Periodic observe: while this process leads, every provider that can `observe` is asked, node by node, what its
 * backend holds; the answers refresh the store's per-provider observations, from which the API reports drift per
 * attribute and names the provider that saw it (`GET /api/inventory/:kind/:name?show=authority`).
 */
import type { Clock, Store } from '@consortium/core';
import { toErrorInfo } from '@consortium/core';
import type winston from 'winston';
import type { HookPublisher } from './hooks.js';
import { driftEvent } from './hooks.js';
import type { Kinds } from './plugins.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';
import { driftOf } from './web/views.js';

/** Dependencies of the observer. */
export interface ObserverDeps {
  readonly store: Store;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  /** Time between passes; 0 disables observing. */
  readonly intervalMs: number;
  /** Hears of drift (`node.drift`). */
  readonly hooks?: HookPublisher;
}

/** The observer role: leader-only, one pass over every node every `intervalMs`. */
export class Observer implements Runnable {
  readonly name = 'observer';
  readonly needsLeader = true;

  /** Makes the observer over its dependencies. */
  constructor(private readonly deps: ObserverDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    if (this.deps.intervalMs <= 0) return;
    while (!stopped(signal)) {
      await this.deps.clock.sleep(this.deps.intervalMs, signal);
      if (stopped(signal)) return;
      const started = this.deps.clock.now();
      const { nodes, failures } = await this.pass(signal);
      this.deps.logger.debug('observe pass done', { nodes, failures, ms: this.deps.clock.now() - started });
    }
  }

  /** One pass over every node of every kind; returns how many nodes were looked at and how many calls failed. */
  async pass(signal: AbortSignal): Promise<{ nodes: number; failures: number }> {
    const { store, kinds, clock, logger } = this.deps;
    let nodes = 0;
    let failures = 0;
    const reported = new Set<string>();
    for (const [kind, runtime] of kinds) {
      const observers = [...runtime.providers.values()].filter((p) => p.observe !== undefined);
      if (observers.length === 0) continue;
      let cursor: string | undefined;
      do {
        const page = await store.listNodes(kind, { limit: 100, ...(cursor === undefined ? {} : { cursor }) });
        for (const node of page.items) {
          if (stopped(signal)) return { nodes, failures };
          nodes++;
          await Promise.all(
            observers.map(async (provider) => {
              try {
                const seen = await provider.observe?.(
                  { kind, name: node.name },
                  { logger, signal, fencingToken: '0', now: () => clock.now() },
                );
                await store.putObservation(kind, node.name, provider.name, seen ?? null, clock.now());
              } catch (error) {
                failures++;
                // One line per provider and pass: a backend that is down must not flood the log.
                if (!reported.has(provider.name)) {
                  reported.add(provider.name);
                  logger.warn('observe failed', {
                    provider: provider.name,
                    kind,
                    node: node.name,
                    error: toErrorInfo(error).message,
                  });
                }
              }
            }),
          );
          await this.reportDrift(kind, node.name);
        }
        cursor = page.next;
      } while (cursor !== undefined);
    }
    return { nodes, failures };
  }

  /** Tells hooks about the node's drift, if it has any now (the same drift at the same revision only once). */
  private async reportDrift(kind: string, name: string): Promise<void> {
    const { hooks, store, kinds, clock } = this.deps;
    const schema = kinds.get(kind)?.schema;
    if (hooks === undefined || schema === undefined) return;
    const node = await store.getNode(kind, name);
    if (node === undefined) return;
    const drift = driftOf(schema, node);
    if (drift.length > 0) await hooks.publish([driftEvent(node, drift, clock.now())]);
  }
}
