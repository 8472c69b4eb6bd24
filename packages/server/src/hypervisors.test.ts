/**
 * Hypervisors as inventory nodes, end to end against the libvirt lab: `consortium dev` with the inventory and
 * libvirt plugins, two configured hypervisors in two datacenters (two names for the lab's one libvirtd, told apart
 * by the metadata of the domains each placed). The config seeds their `hypervisor` nodes; placement follows the
 * host's datacenter and skips a drained hypervisor; `consort list hypervisor` shows the observed capacity.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from './test-support/dev-server.js';
import { eventually, spawnBinary, tempDir } from './test-support/dev-server.js';

const CONSORT = fileURLToPath(new URL('../../consort/bin/consort.js', import.meta.url));
const PREFIX = 'hvn-';
const data = tempDir('consortium-hypervisors-');
let lab: LibvirtLab;
let server: BinaryServer;

beforeAll(async () => {
  lab = await startLibvirtLab();
  const reach = {
    host: lab.host,
    port: lab.port,
    user: lab.user,
    privateKey: lab.privateKey,
    hostKey: lab.hostKey,
    memoryMib: 100_000,
    domainType: 'qemu',
    network: { type: 'user' },
  };
  const configFile = join(data.dir, 'hypervisors.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      plugins: [
        { module: '@consortium/plugin-inventory' },
        {
          module: '@consortium/plugin-libvirt',
          config: {
            hypervisors: [
              { name: `${PREFIX}pek1`, datacenter: 'pek1', ...reach },
              { name: `${PREFIX}sha2`, datacenter: 'sha2', ...reach },
            ],
            hwspecs: { small: { vcpus: 1, memoryMib: 48 } },
          },
        },
      ],
    }),
  );
  server = await spawnBinary(data.dir, ['--config', configFile], { CONSORTIUM_OBSERVE_SECONDS: '1' });
}, 120_000);

afterAll(async () => {
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
  for (const name of await lab.domains()) if (name.startsWith(PREFIX)) await lab.removeDomain(name);
  await lab.stop();
  data.remove();
}, 60_000);

function consort(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONSORT, ...args],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          PATH: process.env['PATH'],
          HOME: data.dir,
          COLUMNS: '200',
          CONSORT_URL: server.api.url,
          CONSORT_TOKEN: server.api.token,
        },
      },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
          stdout,
          stderr,
        });
      },
    );
  });
}

type Attrs = Record<string, unknown>;

async function hypervisors(): Promise<Map<string, Attrs>> {
  const listed = await consort('list', 'hypervisor', '-o', 'json');
  expect(listed.code).toBe(0);
  const page = JSON.parse(listed.stdout) as { items: { name: string; attrs: Attrs }[] };
  const items = page.items;
  return new Map(items.map((item) => [item.name, item.attrs]));
}

/** Memory of every domain the lab's libvirtd holds now, in MiB (other test files define domains there too). */
async function labMemoryMib(): Promise<number> {
  let total = 0;
  for (const name of await lab.domains()) {
    const info = await lab.tryVirsh(['dominfo', name]);
    const kib = /Max memory:\s+(\d+) KiB/.exec(info.stdout)?.[1];
    if (kib !== undefined) total += Number(kib) / 1024;
  }
  return total;
}

/** Waits until `consort list hypervisor` shows the capacity the lab holds now, and returns that free memory. */
async function observedFree(name: string): Promise<number> {
  return eventually(
    async () => {
      const attrs = (await hypervisors()).get(name);
      const expected = 100_000 - (await labMemoryMib());
      return attrs?.['memory_free_mib'] === expected ? expected : undefined;
    },
    60_000,
    `${name}'s observed free memory to match the lab`,
  );
}

describe('hypervisors as nodes (libvirt lab)', () => {
  it(
    'seeds the configured hypervisors as nodes, with their address, host key and datacenter',
    { timeout: 120_000 },
    async () => {
      const seeded = await eventually(async () => {
        const all = await hypervisors();
        return all.size === 2 ? all : undefined;
      });
      expect(seeded.get(`${PREFIX}pek1`)).toMatchObject({
        address: lab.host,
        ssh_port: lab.port,
        ssh_user: lab.user,
        host_key_fingerprint: lab.hostKeyFingerprint,
        datacenter: 'pek1',
        schedulable: true,
      });
      expect(seeded.get(`${PREFIX}sha2`)).toMatchObject({ datacenter: 'sha2', schedulable: true });
    },
  );

  it(
    'places each host in its datacenter; list hypervisor shows free memory going down as VMs are defined',
    { timeout: 300_000 },
    async () => {
      const before = await observedFree(`${PREFIX}pek1`);
      const a = await consort('create', 'host', `${PREFIX}a`, 'datacenter=pek1', 'hwspec=small');
      expect(a.code, a.stderr).toBe(0);
      expect((await server.api.request('GET', `/api/inventory/host/${PREFIX}a`)).body).toMatchObject({
        attrs: { hypervisor: `${PREFIX}pek1` },
      });
      const afterA = await observedFree(`${PREFIX}pek1`);
      const b = await consort('create', 'host', `${PREFIX}b`, 'datacenter=sha2', 'hwspec=small');
      expect(b.code, b.stderr).toBe(0);
      expect((await server.api.request('GET', `/api/inventory/host/${PREFIX}b`)).body).toMatchObject({
        attrs: { hypervisor: `${PREFIX}sha2` },
      });
      const afterB = await observedFree(`${PREFIX}sha2`);
      // Both names are one libvirtd: each counts every domain there, ours among them.
      expect(await lab.domains()).toEqual(expect.arrayContaining([`${PREFIX}a`, `${PREFIX}b`]));
      // Each figure was observed equal to what the lab held then: 100000 MiB less every domain, ours included.
      expect(afterA).toBeLessThanOrEqual(100_000 - 48);
      expect(afterB).toBeLessThanOrEqual(100_000 - 2 * 48);
      expect(before).toBeLessThanOrEqual(100_000);

      const table = await consort('list', 'hypervisor');
      expect(table.stdout.split('\n')[0]).toMatch(
        /^NAME\s+DATACENTER\s+SCHEDULABLE\s+MEMORY_FREE_MIB\s+MEMORY_TOTAL_MIB\s+VCPUS\s+DOMAINS\s*$/,
      );
      expect(table.stdout).toMatch(new RegExp(`${PREFIX}pek1\\s+pek1\\s+true\\s+-?\\d+\\s+100000`));
    },
  );

  it('places nothing new on a drained hypervisor', { timeout: 120_000 }, async () => {
    expect((await consort('set', 'hypervisor', `${PREFIX}pek1`, 'schedulable=false')).code).toBe(0);
    const refused = await consort('create', 'host', `${PREFIX}c`, 'datacenter=pek1', 'hwspec=small');
    expect(refused.code, `${refused.stdout}${refused.stderr}`).toBe(1);
    expect(`${refused.stdout}${refused.stderr}`).toContain(
      `no schedulable hypervisor in datacenter pek1 for ${PREFIX}c: ${PREFIX}pek1 is not schedulable (draining); ${PREFIX}sha2 is in datacenter sha2`,
    );
    expect(await lab.domains()).not.toContain(`${PREFIX}c`);
    // Observed capacity is the hypervisor's to report, not anyone's to set.
    const set = await consort('set', 'hypervisor', `${PREFIX}pek1`, 'memory_free_mib=5');
    expect(set.code).not.toBe(0);
  });
});
