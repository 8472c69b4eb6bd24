import { randomUUID } from 'node:crypto';
import { LeaseLostError } from '@consortium/core';
import type { Logger } from '@consortium/core';
import { eventually, startEtcd } from '@consortium/testkit';
import type { EtcdHarness } from '@consortium/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { contend } from './contention.js';
import type { CoordinatorContext } from './context.js';
import { EtcdKv } from './etcd-kv.js';
import { lockRoot } from './keys.js';
import { LocalTurns } from './local-turns.js';
import { TxnBatcher } from './txn-batcher.js';
import { SessionKeeper } from './session.js';

let etcd: EtcdHarness;
let admin: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: etcd.endpoint });
}, 30_000);

afterAll(async () => {
  admin.close();
  await etcd.stop();
});

function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const record =
    (level: string) =>
    (message: string): void => {
      lines.push(`${level}: ${message}`);
    };
  return {
    lines,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
}

/** An `EtcdKv` whose watch streams open only once `open()` is called, to hold a watch back past a compaction. */
class GatedKv extends EtcdKv {
  readonly #gate: Promise<void>;
  open!: () => void;
  /** Watch streams asked for. */
  watches = 0;

  constructor(endpoint: string, prefix: string) {
    super({ endpoints: [endpoint], prefix, requestTimeoutMs: 2000 });
    this.#gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  override async watchStream(): ReturnType<EtcdKv['watchStream']> {
    this.watches += 1;
    await this.#gate;
    return super.watchStream();
  }
}

describe('a lock holder over etcd', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function member(prefix: string): {
    context: CoordinatorContext;
    kv: GatedKv;
    logger: ReturnType<typeof recordingLogger>;
  } {
    const kv = new GatedKv(etcd.endpoint, prefix);
    const logger = recordingLogger();
    const closed = new AbortController();
    const sessions = new SessionKeeper(kv, { memberId: 'm', ttlSeconds: 3, logger, closed: closed.signal });
    const context: CoordinatorContext = {
      kv,
      sessions,
      turns: new LocalTurns(),
      writes: new TxnBatcher(kv, 'Writing'),
      memberId: 'm',
      logger,
      closed: closed.signal,
    };
    cleanups.push(async () => {
      closed.abort();
      await sessions.close(new LeaseLostError('test over'), 1000);
      kv.close();
      await admin.delete().prefix(prefix);
    });
    return { context, kv, logger };
  }

  it('keeps holding when its watch resumes into compacted history and its key is still there', async () => {
    const prefix = `/test/${randomUUID()}/`;
    const { context, kv, logger } = member(prefix);
    const spec = { root: lockRoot('k'), describe: 'lock "k"', releasedMessage: 'Lock "k" released' };
    const held = await contend(context, spec, new AbortController().signal);

    // The holder's watch has not started yet; history moves on past its start and is compacted.
    for (let i = 0; i < 3; i++) await admin.put(`${prefix}other`).value(String(i));
    await etcd.compact();
    kv.open();
    await eventually(
      () => logger.lines.includes('warn: etcd watch history was compacted; relisting'),
      'the watch to meet the compaction',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(held.lost.aborted).toBe(false);

    // It watches on from where it read its key: a deletion is still seen.
    await admin.delete().prefix(`${prefix}${spec.root}`);
    await eventually(() => held.lost.aborted, 'the holder to step down');
    expect(held.lost.reason).toBeInstanceOf(LeaseLostError);
    expect((held.lost.reason as Error).message).toBe('Lost lock "k": its key was deleted');
  });

  it('sees its key deleted before its watch opened, and steps down', async () => {
    const prefix = `/test/${randomUUID()}/`;
    const { context, kv } = member(prefix);
    kv.open();
    const spec = { root: lockRoot('k'), describe: 'lock "k"', releasedMessage: 'Lock "k" released' };
    const held = await contend(context, spec, new AbortController().signal);
    await admin.delete().prefix(`${prefix}${spec.root}`);
    expect(kv.watches).toBe(0);
    await eventually(() => held.lost.aborted, 'the holder to step down');
    expect((held.lost.reason as Error).message).toBe('Lost lock "k": its key was deleted');
    expect(kv.watches).toBe(1);
  });

  it('opens no watch for a hold released within its first 200 ms', async () => {
    const prefix = `/test/${randomUUID()}/`;
    const { context, kv } = member(prefix);
    kv.open();
    const spec = { root: lockRoot('k'), describe: 'lock "k"', releasedMessage: 'Lock "k" released' };
    const held = await contend(context, spec, new AbortController().signal);
    await held.release();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(kv.watches).toBe(0);
    expect((held.lost.reason as Error).message).toBe('Lock "k" released');
  });
});
