/**
 * Periodic observe: while this process leads, every provider that can `observe` is asked, node by node, what its
 * backend holds; the answers refresh the store's per-provider observations, from which the API reports drift per
 * attribute and names the provider that saw it (`GET /api/inventory/:kind/:name?show=authority`).
 */
import { setImmediate } from 'node:timers/promises';
import type { Clock, NodeObservation, Store } from '@consortium/core';
import { toErrorInfo } from '@consortium/core';
import type winston from 'winston';
import type { HookPublisher } from './hooks.js';
import { driftEvent } from './hooks.js';
import type { KindRuntime } from './plugins.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';
import { driftOf } from './web/views.js';

/** Dependencies of the observer. */
export interface ObserverDeps {
  readonly store: Store;
  /** The kinds and their providers (a process's `Kinds`; the providers, and the schema for drift). */
  readonly kinds: ReadonlyMap<string, Pick<KindRuntime, 'providers'> & Partial<Pick<KindRuntime, 'schema'>>>;
  readonly logger: winston.Logger;
  readonly clock: Clock;
  /** Time between passes; 0 disables observing. */
  readonly intervalMs: number;
  /** Hears of drift (`node.drift`). */
  readonly hooks?: HookPublisher;
}

/**
 * Nodes per page of a pass: the longest the pass holds the event loop is one page (listed, observed, written). On a
 * busy 2-core machine with the embedded store and 100k hosts a page of 25 takes 3 to 6 ms, one of 100 took 7 to 17;
 * GET p99 while passes ran back to back was 101 ms against 165 (88 with observe off, in the same minutes).
 */
export const OBSERVE_PAGE = 25;

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

  /**
   * One pass over every node of every kind; returns how many nodes were looked at and how many calls failed. A page
   * of `OBSERVE_PAGE` nodes is observed node by node (one backend call at a time per provider), its observations written in one
   * store call, and the pass yields to the event loop before the next page: with an embedded store every call
   * completes synchronously, so without it a pass over 100,000 nodes held off every request for its whole length.
   */
  async pass(signal: AbortSignal): Promise<{ nodes: number; failures: number }> {
    const { store, kinds, clock, logger } = this.deps;
    let nodes = 0;
    let failures = 0;
    const reported = new Set<string>();
    for (const [kind, runtime] of kinds) {
      const observers = [...runtime.providers.values()].filter((p) => p.observe !== undefined);
      if (observers.length === 0) continue;
      // Asked once per kind and pass: a hook made during the pass hears of drift from the next one.
      const reportsDrift = await this.driftListened(kind);
      let cursor: string | undefined;
      do {
        const page = await store.listNodes(kind, {
          limit: OBSERVE_PAGE,
          ...(cursor === undefined ? {} : { cursor }),
        });
        const seen: NodeObservation[] = [];
        // The page's observations carry the time its first call began: none claims to be newer than it is, so a
        // change written while the page was observed is never taken for drift (drift ignores older observations).
        const observedAt = clock.now();
        for (const node of page.items) {
          if (stopped(signal)) break;
          nodes++;
          await Promise.all(
            observers.map(async (provider) => {
              try {
                const attrs = await provider.observe?.(
                  { kind, name: node.name },
                  { logger, signal, fencingToken: '0', now: () => clock.now() },
                );
                seen.push({ name: node.name, provider: provider.name, attrs: attrs ?? null });
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
        }
        try {
          await store.putObservations(kind, seen, observedAt);
          if (reportsDrift) await this.reportDrift(kind, page.items);
        } catch (error) {
          // The store is down: this page's observations are lost, the next pass writes them again.
          failures += seen.length;
          logger.warn('observe failed', { kind, error: toErrorInfo(error).message });
        }
        if (stopped(signal)) return { nodes, failures };
        await setImmediate();
        cursor = page.next;
      } while (cursor !== undefined);
    }
    return { nodes, failures };
  }

  /**
   * True when some enabled hook listens for drift of `kind` (and the kind has a schema to find drift with); false,
   * logged, when the store cannot say: observing goes on, and the next pass reports the drift.
   */
  private async driftListened(kind: string): Promise<boolean> {
    const { hooks, store, kinds, logger } = this.deps;
    if (hooks === undefined || kinds.get(kind)?.schema === undefined) return false;
    try {
      return (await store.listHooks()).some(
        (hook) => hook.enabled && hook.events.includes('node.drift') && (hook.kind ?? kind) === kind,
      );
    } catch (error) {
      logger.warn('listing hooks for drift failed', { kind, error: toErrorInfo(error).message });
      return false;
    }
  }

  /** Tells hooks about the drift of a page's nodes that have some now (the same drift at the same revision only once). */
  private async reportDrift(kind: string, page: readonly { readonly name: string }[]): Promise<void> {
    const { hooks, store, kinds, clock } = this.deps;
    const schema = kinds.get(kind)?.schema;
    if (hooks === undefined || schema === undefined) return;
    for (const { name } of page) {
      const node = await store.getNode(kind, name);
      if (node === undefined) continue;
      const drift = driftOf(schema, node);
      if (drift.length > 0) await hooks.publish([driftEvent(node, drift, clock.now())]);
    }
  }
}
