/**
 * Test-only (excluded from the build): a Map-based stand-in for the parts of the store port that ipam calls
 * (nodes and reservations). Every call yields to the event loop first, so concurrent callers interleave between
 * reading the reservations and reserving, as they would against a real database.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Attrs, Store, StoredNode } from '@consortium/plugin-api';

/** The store methods the fake implements. */
export type MemoryStoreMethods = Pick<
  Store,
  'getNode' | 'insertNode' | 'reserve' | 'release' | 'listReservations'
>;

/** A Map-based fake of the store's nodes and reservations; counts calls of `reserve`. */
export class MemoryStore implements MemoryStoreMethods {
  private readonly nodes = new Map<string, StoredNode>();
  private readonly reservations = new Map<string, Map<string, string>>();
  /** How often `reserve` was called, and how often it refused. */
  readonly stats = { reserve: 0, refused: 0 };

  async getNode(kind: string, name: string): Promise<StoredNode | undefined> {
    await yieldToEventLoop();
    return this.nodes.get(`${kind}/${name}`);
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

  async listReservations(namespace: string): Promise<readonly { key: string; owner: string }[]> {
    await yieldToEventLoop();
    return [...(this.reservations.get(namespace) ?? [])].map(([key, owner]) => ({ key, owner }));
  }

  /** This fake as the full port; calling a method it does not implement throws, naming the method. */
  asStore(): Store {
    return new Proxy(this, {
      get(target, property, receiver) {
        // Promise resolution probes `then`; the store is not a thenable.
        if (typeof property === 'symbol' || property === 'then' || property in target) {
          return Reflect.get(target, property, receiver) as unknown;
        }
        throw new Error(`the memory store does not implement ${property}`);
      },
    }) as unknown as Store;
  }
}
