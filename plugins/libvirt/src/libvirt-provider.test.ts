/**
 * The libvirt provider against the real lab: libvirtd (qemu:///system, TCG) reached over a real sshd with a
 * key-only user. Domains are tiny (48 MiB, no disk); every test uses its own host names and removes its domains.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Attrs, ProposedUpdate, ProviderContext, ProviderTask, UpdateRequest } from '@consortium/core';
import { BackendError, BackendUnavailableError, CancelledError, silentLogger } from '@consortium/core';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LibvirtConfig, LibvirtHypervisorConfig, LibvirtProvider } from './index.js';
import { macFor, plugin } from './index.js';
import { freePort } from '@consortium/testkit';

const PREFIX = 'lvp-';
const HWSPECS = {
  small: { vcpus: 1, memoryMib: 48 },
  medium: { vcpus: 1, memoryMib: 96 },
  large: { vcpus: 2, memoryMib: 128 },
};

let lab: LibvirtLab;
const providers: LibvirtProvider[] = [];

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterEach(async () => {
  for (const provider of providers.splice(0)) provider.close();
  // Powering a TCG domain off takes a second or two; remove them all at once.
  const names = (await lab.domains()).filter((name) => name.startsWith(PREFIX));
  await Promise.all(names.map((name) => lab.removeDomain(name)));
});

afterAll(async () => {
  await lab.stop();
});

function hypervisor(overrides: Partial<LibvirtHypervisorConfig> = {}): LibvirtHypervisorConfig {
  return {
    name: 'lab-a',
    host: lab.host,
    port: lab.port,
    user: lab.user,
    privateKey: lab.privateKey,
    hostKey: lab.hostKey,
    memoryMib: 1_000_000,
    domainType: 'qemu',
    network: { type: 'user' },
    ...overrides,
  };
}

function provider(
  hypervisors: LibvirtHypervisorConfig[] = [hypervisor()],
  config: Partial<LibvirtConfig> = {},
): LibvirtProvider {
  const services = { logger: silentLogger, store: undefined as never, now: () => Date.now() };
  const made = plugin.providers({ hypervisors, hwspecs: HWSPECS, ...config }, services)[0] as LibvirtProvider;
  providers.push(made);
  return made;
}

let jobs = 0;
function task(name: string, node: Attrs, updates: readonly UpdateRequest[]): ProviderTask {
  const jobId = `job-${++jobs}`;
  return {
    id: `${jobId}/r1/libvirt`,
    jobId,
    round: 1,
    attempt: 1,
    provider: 'libvirt',
    kind: 'host',
    name,
    node,
    updates: updates.map((u, i): ProposedUpdate => ({ ...u, id: `u${i + 1}`, origin: 'user' })),
  };
}

const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '0',
  now: () => Date.now(),
};

const actions = (outcome: { operations?: readonly { action: string }[] }): string[] =>
  (outcome.operations ?? []).map((o) => o.action);

async function domstate(name: string): Promise<string> {
  return (await lab.virsh(['domstate', name])).trim();
}

/** The node after a create: what the provider reported, and netboot as Cobbler would set it. */
function created(name: string, extra: Attrs = {}): Attrs {
  return {
    present: true,
    hwspec: 'small',
    hypervisor: 'lab-a',
    interfaces: [{ name: 'eth0', mac: macFor(name, new Set()) }],
    netboot: true,
    ...extra,
  };
}

const SMALL_ON: readonly UpdateRequest[] = [
  { path: 'hwspec', op: 'set', value: 'small' },
  { path: 'power', op: 'set', value: 'on' },
];

describe('libvirt provider against the lab', () => {
  it('defines, starts, stops and undefines a domain', async () => {
    const p = provider();
    const name = `${PREFIX}life`;
    const mac = macFor(name, new Set());

    const define = await p.apply(task(name, { present: true }, SMALL_ON), context);
    expect(define).toMatchObject({
      accepted: ['u1'],
      deferred: [{ id: 'u2', reason: 'waiting for PXE registration (netboot)', waitFor: ['netboot'] }],
      set: { hypervisor: 'lab-a', 'interfaces[eth0].mac': mac },
    });
    expect(define.operations).toEqual([
      {
        action: 'define',
        target: `lab-a/${name}`,
        detail: expect.stringMatching(
          new RegExp(
            `^defined domain ${name} \\(small: 1 vcpus, 48 MiB, mac ${mac}\\) on lab-a has -?\\d+ MiB free of 1000000 MiB$`,
          ),
        ),
        durationMs: expect.any(Number),
      },
    ]);
    expect(await domstate(name)).toBe('shut off');
    const xml = await lab.virsh(['dumpxml', '--inactive', name]);
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain("<memory unit='KiB'>49152</memory>");
    expect(xml).toContain("<vcpu placement='static'>1</vcpu>");
    expect(xml).toContain("<boot dev='network'/>");
    expect(xml).toContain(`<mac address='${mac}'/>`);

    const start = await p.apply(
      task(name, created(name), [{ path: 'power', op: 'set', value: 'on' }]),
      context,
    );
    expect(start).toMatchObject({ accepted: ['u1'] });
    expect(actions(start)).toEqual(['start']);
    expect(await domstate(name)).toBe('running');

    const stop = await p.apply(
      task(name, created(name, { power: 'on' }), [{ path: 'power', op: 'set', value: 'off' }]),
      context,
    );
    expect(stop).toMatchObject({ accepted: ['u1'] });
    expect(actions(stop)).toEqual(['destroy']);
    expect(await domstate(name)).toBe('shut off');

    // A second boot does not wait for PXE, even with netboot off.
    const again = await p.apply(
      task(name, created(name, { power: 'off', netboot: false }), [
        { path: 'power', op: 'set', value: 'on' },
      ]),
      context,
    );
    expect(actions(again)).toEqual(['start']);

    const removed = await p.apply(
      task(name, { ...created(name, { power: 'on' }), present: undefined } as unknown as Attrs, [
        { path: 'present', op: 'sync' },
      ]),
      context,
    );
    expect(removed).toEqual({
      accepted: ['u1'],
      unset: ['hwspec', 'power', 'hypervisor', 'interfaces[eth0].mac'],
      operations: [
        expect.objectContaining({ action: 'destroy', target: `lab-a/${name}` }),
        expect.objectContaining({ action: 'undefine', target: `lab-a/${name}` }),
      ],
    });
    expect(await lab.domains()).not.toContain(name);
  });

  it('converges when every task runs again', async () => {
    const p = provider();
    const name = `${PREFIX}again`;
    const first = await p.apply(task(name, { present: true }, SMALL_ON), context);
    // The same task after a crash: the domain exists, so it is found, not defined twice.
    const second = await p.apply(task(name, { present: true }, SMALL_ON), context);
    expect(actions(first)).toEqual(['define']);
    expect(actions(second)).toEqual([]);
    expect(second.set).toEqual(first.set);
    expect(second.deferred).toEqual(first.deferred);

    const on = task(name, created(name), [{ path: 'power', op: 'set', value: 'on' }]);
    expect(actions(await p.apply(on, context))).toEqual(['start']);
    const onAgain = await p.apply(on, context);
    expect(onAgain).toEqual({ accepted: ['u1'] });
    expect(await domstate(name)).toBe('running');

    const off = task(name, created(name, { power: 'on' }), [{ path: 'power', op: 'set', value: 'off' }]);
    expect(actions(await p.apply(off, context))).toEqual(['destroy']);
    expect(await p.apply(off, context)).toEqual({ accepted: ['u1'] });

    const gone = task(name, { hwspec: 'small', hypervisor: 'lab-a' }, [{ path: 'present', op: 'sync' }]);
    expect(actions(await p.apply(gone, context))).toEqual(['undefine']);
    expect(await p.apply(gone, context)).toEqual({ accepted: ['u1'], unset: ['hwspec', 'hypervisor'] });
    expect(await lab.domains()).not.toContain(name);
  });

  it('finds a domain on any hypervisor when the node does not say where it is', async () => {
    const p = provider([hypervisor({ name: 'lab-a' }), hypervisor({ name: 'lab-b', memoryMib: 2_000_000 })]);
    const name = `${PREFIX}found`;
    await p.apply(task(name, { present: true }, SMALL_ON), context);
    // A fresh provider (a restarted worker) without the node's hypervisor finds it by its metadata.
    const other = provider([
      hypervisor({ name: 'lab-a' }),
      hypervisor({ name: 'lab-b', memoryMib: 2_000_000 }),
    ]);
    const found = await other.apply(task(name, { present: true }, SMALL_ON), context);
    expect(actions(found)).toEqual([]);
    expect(found.set).toMatchObject({ hypervisor: 'lab-b' });
  });

  it('places a VM on the hypervisor with the most free memory, or where the request pins it', async () => {
    const p = provider([
      hypervisor({ name: 'lab-a', memoryMib: 1_000_000 }),
      hypervisor({ name: 'lab-b', memoryMib: 1_500_000 }),
    ]);
    const placed = await p.apply(task(`${PREFIX}place-1`, { present: true }, SMALL_ON), context);
    expect(placed.set).toMatchObject({ hypervisor: 'lab-b' });
    expect(placed.operations?.[0]?.target).toBe(`lab-b/${PREFIX}place-1`);

    const pinned = await p.apply(
      task(`${PREFIX}place-2`, { present: true }, [
        { path: 'hwspec', op: 'set', value: 'small' },
        { path: 'hypervisor', op: 'set', value: 'lab-a' },
      ]),
      context,
    );
    expect(pinned).toMatchObject({
      accepted: ['u1', 'u2'],
      set: { 'interfaces[eth0].mac': expect.any(String) },
    });
    expect(pinned.set).not.toHaveProperty('hypervisor');
    expect(pinned.operations?.[0]?.target).toBe(`lab-a/${PREFIX}place-2`);
    const metadata = await lab.virsh(['dumpxml', '--inactive', `${PREFIX}place-2`]);
    expect(metadata).toMatch(
      /<consortium:vm xmlns:consortium="https:\/\/consortium.dev\/xmlns\/libvirt\/1" hypervisor="lab-a" booted="no"\/>/,
    );
  });

  it('rejects a VM no hypervisor has room for, naming the need and the free memory', async () => {
    const p = provider([
      hypervisor({ name: 'lab-a', memoryMib: 40 }),
      hypervisor({ name: 'lab-b', memoryMib: 45 }),
    ]);
    const name = `${PREFIX}noroom`;
    const outcome = await p.apply(task(name, { present: true }, SMALL_ON), context);
    expect(outcome.accepted).toBeUndefined();
    expect(outcome.rejected).toHaveLength(2);
    expect(outcome.rejected![0]!.reason).toMatch(
      /^no hypervisor has room for a small: 1 vcpus, 48 MiB VM: lab-a has -?\d+ MiB free of 40 MiB; lab-b has -?\d+ MiB free of 45 MiB$/,
    );
    expect(outcome.operations).toBeUndefined();
    expect(await lab.domains()).not.toContain(name);

    const pinned = await p.apply(
      task(name, { present: true }, [
        { path: 'hwspec', op: 'set', value: 'small' },
        { path: 'hypervisor', op: 'set', value: 'nowhere' },
      ]),
      context,
    );
    expect(pinned.rejected?.[0]?.reason).toBe('there is no hypervisor "nowhere" (configured: lab-a, lab-b)');
  });

  it('resizes in place, and refuses to move a VM or change its MAC', async () => {
    const p = provider();
    const name = `${PREFIX}resize`;
    await p.apply(task(name, { present: true }, SMALL_ON), context);
    const resized = await p.apply(
      task(name, created(name), [{ path: 'hwspec', op: 'set', value: 'medium' }]),
      context,
    );
    expect(resized).toMatchObject({ accepted: ['u1'] });
    expect(resized.operations?.[0]?.detail).toBe(`resized domain ${name} to medium: 1 vcpus, 96 MiB`);
    expect(await lab.virsh(['dominfo', name])).toMatch(/Max memory: +98304 KiB/);
    // The same MAC and UUID: a redefinition, not a new domain.
    expect(await lab.virsh(['dumpxml', '--inactive', name])).toContain(
      `<mac address='${macFor(name, new Set())}'/>`,
    );

    const moved = await p.apply(
      task(name, created(name), [
        { path: 'hypervisor', op: 'set', value: 'lab-a' },
        { path: 'interfaces[eth0].mac', op: 'set', value: '52:54:00:00:00:01' },
      ]),
      context,
    );
    expect(moved).toEqual({
      accepted: ['u1'],
      rejected: [
        {
          id: 'u2',
          reason: `the MAC of ${name} is ${macFor(name, new Set())}; the MAC of an existing VM cannot be changed`,
        },
      ],
    });
  });

  it('fails with virsh’s reason when the domain cannot start', async () => {
    const p = provider([hypervisor({ network: { type: 'network', source: 'consortium-missing-net' } })]);
    const name = `${PREFIX}nostart`;
    await p.apply(task(name, { present: true }, SMALL_ON), context);
    const start = p.apply(task(name, created(name), [{ path: 'power', op: 'set', value: 'on' }]), context);
    await expect(start).rejects.toThrow(BackendError);
    await expect(start).rejects.toThrow(
      `virsh start ${name} on lab-a: Failed to start domain '${name}': Network not found: no network with matching name 'consortium-missing-net'`,
    );
    await expect(start).rejects.toMatchObject({ retryable: false, code: 'BACKEND_ERROR' });
  });

  it('observes drift made behind its back: power and hwspec', async () => {
    const p = provider();
    const name = `${PREFIX}drift`;
    await p.apply(task(name, { present: true }, SMALL_ON), context);
    await p.apply(task(name, created(name), [{ path: 'power', op: 'set', value: 'on' }]), context);
    const ref = { kind: 'host', name };
    expect(await p.observe!(ref, context)).toEqual({
      hwspec: 'small',
      power: 'on',
      hypervisor: 'lab-a',
      interfaces: [{ name: 'eth0', mac: macFor(name, new Set()) }],
    });

    await lab.virsh(['destroy', name]);
    await lab.virsh(['setmaxmem', name, '96M', '--config']);
    expect(await p.observe!(ref, context)).toMatchObject({ hwspec: 'medium', power: 'off' });
    await lab.virsh(['setmaxmem', name, '64M', '--config']);
    expect(await p.observe!(ref, context)).not.toHaveProperty('hwspec');

    await lab.virsh(['undefine', name]);
    expect(await p.observe!(ref, context)).toBeNull();
    expect(await p.observe!({ kind: 'hypervisor', name }, context)).toBeNull();
  });

  it('explains with reads only', async () => {
    const p = provider();
    const name = `${PREFIX}explain`;
    const plan = await p.explain(task(name, { present: true }, SMALL_ON), context);
    expect(plan).toMatchObject({
      accepted: ['u1'],
      deferred: [{ id: 'u2', waitFor: ['netboot'] }],
      set: { hypervisor: 'lab-a', 'interfaces[eth0].mac': macFor(name, new Set()) },
    });
    expect(actions(plan)).toEqual(['define']);
    // A later round of the same plan: the domain exists only as the reported hypervisor.
    const start = await p.explain(
      task(name, created(name), [{ path: 'power', op: 'set', value: 'on' }]),
      context,
    );
    expect(actions(start)).toEqual(['start']);
    expect(await lab.domains()).not.toContain(name);
  });
});

describe('libvirt provider SSH failures', () => {
  it('is retryable when sshd refuses the connection', async () => {
    const closed = await freePort();
    const p = provider([hypervisor({ port: closed })]);
    const outcome = p.apply(task(`${PREFIX}refused`, { present: true }, SMALL_ON), context);
    await expect(outcome).rejects.toThrow(BackendUnavailableError);
    await expect(outcome).rejects.toThrow(
      `hypervisor lab-a (ssh ${lab.user}@127.0.0.1:${closed}) is unreachable: connect ECONNREFUSED 127.0.0.1:${closed}`,
    );
    await expect(outcome).rejects.toMatchObject({ retryable: true });
  });

  it('is not retryable when the host key is not the configured one', async () => {
    const p = provider([hypervisor({ hostKey: lab.publicKey })]);
    const outcome = p.observe!({ kind: 'host', name: `${PREFIX}hostkey` }, context);
    await expect(outcome).rejects.toThrow(BackendError);
    await expect(outcome).rejects.toThrow(
      `hypervisor lab-a (ssh ${lab.user}@127.0.0.1:${lab.port}) presented the host key ssh-ed25519 ` +
        `${lab.hostKeyFingerprint}, not the configured `,
    );
    await expect(outcome).rejects.toMatchObject({ retryable: false });
  });

  it('accepts the host key as a SHA256 fingerprint', async () => {
    const p = provider([hypervisor({ hostKey: lab.hostKeyFingerprint })]);
    expect(await p.observe!({ kind: 'host', name: `${PREFIX}fingerprint` }, context)).toBeNull();
  });

  it('is not retryable when the key is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libvirt-key-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
      const p = provider([hypervisor({ privateKey: readFileSync(join(dir, 'key'), 'utf8') })]);
      const outcome = p.observe!({ kind: 'host', name: `${PREFIX}auth` }, context);
      await expect(outcome).rejects.toThrow(BackendError);
      await expect(outcome).rejects.toThrow(
        `hypervisor lab-a (ssh ${lab.user}@127.0.0.1:${lab.port}) refused the key: All configured authentication methods failed`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is retryable when the server does not complete the handshake in time', async () => {
    // A listener that accepts and never speaks: a hung sshd or a black-holing firewall.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const p = provider([hypervisor({ port })], { connectTimeoutMs: 300 });
      const outcome = p.observe!({ kind: 'host', name: `${PREFIX}hung` }, context);
      await expect(outcome).rejects.toThrow(BackendUnavailableError);
      await expect(outcome).rejects.toMatchObject({
        message: `hypervisor lab-a (ssh ${lab.user}@127.0.0.1:${port}) did not complete the SSH handshake within 300 ms`,
        retryable: true,
        details: { hypervisor: 'lab-a' },
      });
    } finally {
      silent.close();
    }
  });

  it('stops waiting when the task is cancelled', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const p = provider([hypervisor({ port: (silent.address() as AddressInfo).port })]);
      const abort = new AbortController();
      const outcome = p.observe!(
        { kind: 'host', name: `${PREFIX}cancel` },
        { ...context, signal: abort.signal },
      );
      abort.abort();
      await expect(outcome).rejects.toThrow(CancelledError);
    } finally {
      silent.close();
    }
  });
});
