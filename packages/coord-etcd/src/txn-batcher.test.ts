import { randomUUID } from 'node:crypto';
import { LeaseLostError } from '@consortium/core';
import { startEtcd } from '@consortium/testkit';
import type { EtcdHarness } from '@consortium/testkit';
import type { ICompare, IRequestOp } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKv } from './etcd-kv.js';
import type { RangeResult, TxnResult } from './etcd-kv.js';
import { TxnBatcher } from './txn-batcher.js';
import type { GuardedWrite } from './txn-batcher.js';

let etcd: EtcdHarness;

beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);

afterAll(async () => {
  await etcd.stop();
});

/** An `EtcdKv` that records the name of every transaction it sends. */
class CountingKv extends EtcdKv {
  readonly sent: string[] = [];

  override txn(
    what: string,
    compare: readonly ICompare[],
    success: readonly IRequestOp[],
    failure?: readonly IRequestOp[],
  ): Promise<TxnResult> {
    this.sent.push(what);
    return super.txn(what, compare, success, failure);
  }
}

function connect(): CountingKv {
  return new CountingKv({
    endpoints: [etcd.endpoint],
    prefix: `/batcher-${randomUUID()}/`,
    requestTimeoutMs: 5000,
  });
}

/** A put of `key` guarded by the key being absent, as the queue's enqueue is. */
function putIfAbsent(kv: EtcdKv, key: string, lease?: string): GuardedWrite {
  return {
    what: `Putting ${key}`,
    keys: [key],
    compares: [kv.absent(key)],
    success: [kv.put(key, 'v', lease)],
    checks: [kv.read(key, { keysOnly: true })],
    held: ([read]: readonly RangeResult[]) => read?.kvs.length === 0,
  };
}

describe('the write pipe of a coordinator', () => {
  it('sends the writes of one turn as one transaction, and tells each whether it applied', async () => {
    const kv = connect();
    const batcher = new TxnBatcher(kv, 'Writing');
    try {
      await kv.txn('setup', [], [kv.put('taken', 'x')]);
      kv.sent.length = 0;
      const outcomes = await Promise.all([
        batcher.submit(putIfAbsent(kv, 'a')),
        batcher.submit(putIfAbsent(kv, 'taken')),
        batcher.submit(putIfAbsent(kv, 'b')),
      ]);
      expect(outcomes).toEqual([true, false, true]);
      // One combined attempt, which failed on `taken`; the two whose guards held went again together.
      expect(kv.sent).toEqual(['Writing (3 at once)', 'Writing (2 at once)']);
      const read = await kv.range('', { prefix: true });
      expect(read.kvs.map((entry) => entry.key).sort()).toEqual(['a', 'b', 'taken']);
    } finally {
      kv.close();
    }
  });

  it('gives each write the results of its own reads, which see the writes before them', async () => {
    const kv = connect();
    const batcher = new TxnBatcher(kv, 'Writing');
    try {
      const readAfter = (key: string): GuardedWrite => ({
        ...putIfAbsent(kv, key),
        success: [kv.put(key, 'v'), kv.read('', { prefix: true, keysOnly: true })],
      });
      const [first, second] = await Promise.all([
        batcher.run(readAfter('x/1')),
        batcher.run(readAfter('x/2')),
      ]);
      if (!first.applied || !second.applied) throw new Error('both writes should have applied');
      expect(first.revision).toBe(second.revision);
      expect(first.ranges.map((range) => range.kvs.map((entry) => entry.key))).toEqual([['x/1']]);
      expect(second.ranges.map((range) => range.kvs.map((entry) => entry.key))).toEqual([['x/1', 'x/2']]);
    } finally {
      kv.close();
    }
  });

  it('fails only the write on a lost lease when etcd refuses the combined transaction for it', async () => {
    const kv = connect();
    const batcher = new TxnBatcher(kv, 'Writing');
    try {
      const lease = await kv.grant(10);
      await kv.revoke(lease);
      kv.sent.length = 0;
      const outcomes = await Promise.allSettled([
        batcher.submit(putIfAbsent(kv, 'before')),
        batcher.submit(putIfAbsent(kv, 'leased', lease)),
        batcher.submit(putIfAbsent(kv, 'after')),
      ]);
      expect(outcomes[0]).toEqual({ status: 'fulfilled', value: true });
      expect(outcomes[2]).toEqual({ status: 'fulfilled', value: true });
      const refused = outcomes[1];
      expect(refused.status).toBe('rejected');
      expect(refused.status === 'rejected' ? refused.reason : undefined).toBeInstanceOf(LeaseLostError);
      expect(kv.sent).toEqual(['Writing (3 at once)', 'Putting before', 'Putting leased', 'Putting after']);
      const read = await kv.range('', { prefix: true });
      expect(read.kvs.map((entry) => entry.key).sort()).toEqual(['after', 'before']);
    } finally {
      kv.close();
    }
  });
});
