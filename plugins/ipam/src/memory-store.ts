/**
 * Test-only (excluded from the build): a Map-based stand-in for the parts of the store port that ipam calls
 * (nodes and reservations). Every call yields to the event loop first, so concurrent callers interleave between
 * reading the reservations and reserving, as they would against a real database.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Attrs, ListNodesOptions, Page, PluginStore, StoredNode } from '@consortium/plugin-api';

/** A Map-based fake of the store's part that plugins get (nodes and reservations); counts calls of `reserve`. */
export class MemoryStore implements PluginStore {
  private readonly nodes = new Map<string, StoredNode>();
  private readonly reservations = new Map<string, Map<string, string>>();
  /** How often `reserve` was called, and how often it refused. */
  readonly stats = { reserve: 0, refused: 0 };

  async getNode(kind: string, name: string): Promise<StoredNode | undefined> {
    await yieldToEventLoop();
    return this.nodes.get(`${kind}/${name}`);
  }

  /** Nodes of a kind in name order; filters are not supported (ipam does not list). */
  async listNodes(kind: string, options: ListNodesOptions): Promise<Page<StoredNode>> {
    await yieldToEventLoop();
    if (options.filter !== undefined || options.cursor !== undefined) {
      throw new Error('the memory store lists without filters or cursors');
    }
    const items = [...this.nodes.values()]
      .filter((node) => node.kind === kind)
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .slice(0, options.limit);
    return { items };
  }

  async insertNode(kind: string, name: string, attrs: Attrs, at: number): Promise<StoredNode> {
    await yieldToEventLoop();
    const key = `${kind}/${name}`;
    if (this.nodes.has(key)) throw new Error(`${key} exists`);
    const node: StoredNode = { kind, name, attrs, revision: 1, observed: {}, createdAt: at, updatedAt: at };
    this.nodes.set(key, node);
    return node;
  }

  async reserve(namespace: string, key: string, owner: string): Promise<boolean> {
    await yieldToEventLoop();
    this.stats.reserve++;
    const space = this.reservations.get(namespace) ?? new Map<string, string>();
    this.reservations.set(namespace, space);
    const holder = space.get(key);
    if (holder !== undefined && holder !== owner) {
      this.stats.refused++;
      return false;
    }
    space.set(key, owner);
    return true;
  }

  async release(namespace: string, owner: string, key?: string): Promise<void> {
    await yieldToEventLoop();
    const space = this.reservations.get(namespace);
    for (const [k, holder] of space ?? []) {
      if (holder === owner && (key === undefined || key === k)) space?.delete(k);
    }
  }

  async listReservations(
    namespace: string,
    owner?: string,
  ): Promise<readonly { key: string; owner: string }[]> {
    await yieldToEventLoop();
    return [...(this.reservations.get(namespace) ?? [])]
      .filter(([, holder]) => owner === undefined || holder === owner)
      .map(([key, holder]) => ({ key, owner: holder }));
  }
}
