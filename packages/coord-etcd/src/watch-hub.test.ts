import { randomUUID } from 'node:crypto';
import { eventually, startEtcd } from '@consortium/testkit';
import type { EtcdHarness } from '@consortium/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKv } from './etcd-kv.js';
import { KeyWatch } from './key-watch.js';
import type { WatchEvent } from './key-watch.js';

let etcd: EtcdHarness;

beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);

afterAll(async () => {
  await etcd.stop();
});

/** An `EtcdKv` that counts the gRPC watch streams it opens. */
class CountingKv extends EtcdKv {
  streams = 0;

  override watchStream(): ReturnType<EtcdKv['watchStream']> {
    this.streams += 1;
    return super.watchStream();
  }
}

const quiet = { debug: () => undefined, warn: () => undefined };

describe('the shared watch stream of a connection', () => {
  it('carries many watches on one gRPC stream, each hearing only its key, and none after it closes', async () => {
    const kv = new CountingKv({
      endpoints: [etcd.endpoint],
      prefix: `/hub-${randomUUID()}/`,
      requestTimeoutMs: 5000,
    });
    const heard = new Map<string, string[]>();
    const connected = new Set<string>();
    const watches = Array.from({ length: 20 }, (_, i) => {
      const key = `k${i}`;
      heard.set(key, []);
      return new KeyWatch(kv, {
        key,
        onEvents: (events: readonly WatchEvent[]) => {
          heard.get(key)?.push(...events.map((event) => `${event.type} ${event.kv.value.toString()}`));
        },
        onConnected: () => connected.add(key),
        logger: quiet,
      });
    });
    try {
      await eventually(() => connected.size === 20, 'every watch to be created');
      for (let i = 0; i < 20; i++) await kv.txn('put', [], [kv.put(`k${i}`, 'one')]);
      await eventually(
        () => [...heard.values()].every((list) => list.length === 1),
        'every watch to hear its put',
      );
      expect([...heard.values()]).toEqual(Array.from({ length: 20 }, () => ['put one']));

      for (const watch of watches.slice(0, 10)) watch.close();
      for (let i = 0; i < 20; i++) await kv.txn('delete', [], [kv.delete(`k${i}`)]);
      await eventually(
        () => [...heard.values()].slice(10).every((list) => list.length === 2),
        'the open watches to hear the deletes',
      );
      // A marker put after the deletes: once the last open watch hears it, the closed ones had their chance too.
      await kv.txn('marker', [], [kv.put('k19', 'marker')]);
      await eventually(() => heard.get('k19')?.length === 3, 'the marker');
      expect([...heard.values()].slice(0, 10)).toEqual(Array.from({ length: 10 }, () => ['put one']));
      expect(heard.get('k10')).toEqual(['put one', 'delete ']);
      expect(kv.streams).toBe(1);
    } finally {
      for (const watch of watches) watch.close();
      kv.close();
    }
  });
});
