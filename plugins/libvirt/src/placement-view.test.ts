/**
 * The libvirt provider's placement view against the real lab: one long-lived virsh per hypervisor, and a view of
 * its domains that domain events keep current, so that a placement reads only the domains that changed. The SSH
 * shell is wrapped to count what goes over it (virsh session lines, event lines).
 */
import type { ProviderContext, ProviderTask, UpdateRequest } from '@consortium/core';
import { silentLogger } from '@consortium/core';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelHandlers, LibvirtProvider, RemoteShell } from './index.js';
import { domainXml, hypervisorsOf, libvirtProvider, Virsh } from './index.js';

const PREFIX = 'lpv-';
let lab: LibvirtLab;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  const names = (await lab.domains()).filter((name) => name.startsWith(PREFIX));
  await Promise.all(names.map((name) => lab.removeDomain(name)));
});

afterAll(async () => {
  await lab.stop();
});

const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '0',
  now: () => Date.now(),
};

let jobs = 0;
function create(name: string): ProviderTask {
  const jobId = `job-${++jobs}`;
  const updates: UpdateRequest[] = [{ path: 'hwspec', op: 'set', value: 'small' }];
  return {
    id: `${jobId}/r1/libvirt`,
    jobId,
    round: 1,
    attempt: 1,
    provider: 'libvirt',
    kind: 'host',
    name,
    node: { present: true },
    updates: updates.map((u, i) => ({ ...u, id: `u${i + 1}`, origin: 'user' as const })),
  };
}

/** A provider over the lab whose shell counts virsh session lines by command and the events it received. */
function countingProvider(): {
  provider: LibvirtProvider;
  lines: Map<string, number>;
  events: string[];
  execs: string[];
  /** Closes the SSH connection and waits until the event stream saw it end. */
  drop: () => Promise<void>;
} {
  const [real] = hypervisorsOf(
    {
      hypervisors: [
        {
          name: 'lab-a',
          host: lab.host,
          port: lab.port,
          user: lab.user,
          privateKey: lab.privateKey,
          hostKey: lab.hostKey,
          memoryMib: 1000,
          domainType: 'qemu',
          network: { type: 'user' },
        },
      ],
    },
    silentLogger,
  );
  if (real?.shell.open === undefined) throw new Error('no hypervisor');
  const open = real.shell.open.bind(real.shell);
  const lines = new Map<string, number>();
  const events: string[] = [];
  const execs: string[] = [];
  let streamsEnded = 0;
  const shell: RemoteShell = {
    address: real.shell.address,
    exec: (command, options) => {
      execs.push(command);
      return real.shell.exec(command, options);
    },
    open: async (command: string, handlers: ChannelHandlers, signal: AbortSignal) => {
      const listening = command.includes(' event ');
      const channel = await open(
        command,
        listening
          ? {
              onData: (text) => {
                events.push(...text.split('\n').filter((l) => l.startsWith('event ')));
                handlers.onData(text);
              },
              onClose: (code) => {
                streamsEnded++;
                handlers.onClose(code);
              },
            }
          : handlers,
        signal,
      );
      return {
        write: (text: string) => {
          for (const line of text.split('\n')) {
            const word = line
              .split(' ')
              .slice(0, line.startsWith('list') ? 2 : 1)
              .join(' ');
            if (word !== '' && word !== 'echo') lines.set(word, (lines.get(word) ?? 0) + 1);
          }
          channel.write(text);
        },
        close: () => {
          channel.close();
        },
      };
    },
    hold: () => real.shell.hold?.() ?? (() => undefined),
    close: () => {
      real.shell.close();
    },
  };
  const provider = libvirtProvider({
    hypervisors: [{ ...real, shell, virsh: new Virsh('lab-a', shell, lab.uri, 60_000) }],
    hwspecs: { small: { vcpus: 1, memoryMib: 48 } },
    interface: 'eth0',
    machine: 'pc',
  });
  cleanups.push(() => {
    provider.close();
  });
  const drop = async (): Promise<void> => {
    real.shell.close();
    for (let i = 0; i < 400 && streamsEnded === 0; i++) await delay(25);
  };
  return { provider, lines, events, execs, drop };
}

/** Waits until `events` holds an event about `domain` (events come a moment after the change). */
async function eventAbout(events: readonly string[], domain: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (events.some((e) => e.includes(`for domain '${domain}'`))) return;
    await delay(25);
  }
  throw new Error(`no event about ${domain}: ${JSON.stringify(events)}`);
}

const freeIn = (detail: string | undefined): number => Number(/has (-?\d+) MiB free/.exec(detail ?? '')?.[1]);

describe('libvirt placement view against the lab', () => {
  it('reads only the domains events named once its event stream proved itself, and counts domains defined behind its back', async () => {
    const { provider, lines, events, execs } = countingProvider();
    const before = (await lab.domains()).length;
    expect(before).toBeGreaterThanOrEqual(0);

    // First placement: a full read (list and every domain) in the session; the define is its one exec.
    const first = await provider.apply(create(`${PREFIX}a`), context);
    expect(first.operations?.map((o) => o.action)).toEqual(['define']);
    expect(lines.get('list --all')).toBe(1);
    expect(execs).toEqual([expect.stringContaining(' define /dev/stdin')]);
    await eventAbout(events, `${PREFIX}a`);

    // Second: the stream has proved itself, so this read is the last full one; the view is trusted after it.
    await provider.apply(create(`${PREFIX}b`), context);
    expect(lines.get('list --all')).toBe(2);
    await eventAbout(events, `${PREFIX}b`);

    // Behind the provider's back: a 96 MiB domain. Its event marks it; the next placement counts its memory.
    const dir = mkdtempSync(join(tmpdir(), 'lpv-'));
    const file = join(dir, 'x.xml');
    writeFileSync(
      file,
      domainXml({
        name: `${PREFIX}x`,
        domainType: 'qemu',
        machine: 'pc',
        vcpus: 1,
        memoryMib: 96,
        mac: '52:54:00:00:00:99',
        network: { type: 'user' },
        metadata: {},
      }),
    );
    await lab.virsh(['define', file]);
    rmSync(dir, { recursive: true });
    await eventAbout(events, `${PREFIX}x`);
    const dumpsBefore = lines.get('dumpxml') ?? 0;
    const third = await provider.apply(create(`${PREFIX}c`), context);
    // No list of every domain: only the domains events named (b and x) and c itself were read again.
    expect(lines.get('list --all')).toBe(2);
    expect((lines.get('dumpxml') ?? 0) - dumpsBefore).toBe(3);
    const second = freeIn(first.operations?.[0]?.detail) - 48;
    expect(freeIn(third.operations?.[0]?.detail)).toBe(second - 48 - 96);
  });

  it('reads every domain again after its event stream ended', async () => {
    const { provider, lines, events, drop } = countingProvider();
    await provider.apply(create(`${PREFIX}d`), context);
    await eventAbout(events, `${PREFIX}d`);
    await provider.apply(create(`${PREFIX}e`), context);
    expect(lines.get('list --all')).toBe(2);
    // The connection drops (idle close, a network fault): events may be missed, so the view is not trusted.
    await drop();
    await provider.apply(create(`${PREFIX}f`), context);
    expect(lines.get('list --all')).toBe(3);
  });
});
