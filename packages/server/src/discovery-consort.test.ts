/**
 * `consort discover` and `consort adopt` (the real binary) against `consortium dev` with the NetBox and Cobbler
 * test servers: the three groups as a table and as JSON/YAML, adoption by name and with --all (with its count), the
 * exit codes of a usage error (2), an unknown name (4) and a name that is already a node (5), and no backend write.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Api } from './test-support/dev-server.js';
import { startInProcess, tempDir } from './test-support/dev-server.js';

const CONSORT = fileURLToPath(new URL('../../consort/bin/consort.js', import.meta.url));
const data = tempDir('consortium-discovery-consort-');
let netbox: NetboxServer;
let cobbler: CobblerTestServer;
let api: Api | undefined;
let stop: () => Promise<void> = () => Promise.resolve();

beforeAll(async () => {
  netbox = await startNetboxServer();
  netbox.seed({
    sites: [{ name: 'Peking 1', slug: 'pek1' }],
    clusters: [{ name: 'web', type: 'kvm', site: 'pek1' }],
    virtualMachines: [{ name: 'web-09', status: 'active', site: 'pek1', cluster: 'web' }],
  });
  cobbler = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
  cobbler.addSystem({ name: 'web-09', profile: 'debian12', netboot_enabled: true });
  cobbler.addSystem({ name: 'pxe-01', profile: 'debian12' });
  cobbler.addSystem({ name: 'pxe-02', profile: 'debian12' });
  const configFile = join(data.dir, 'discovery.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      plugins: [
        { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
        { module: '@consortium/plugin-netbox', config: { url: netbox.url, token: netbox.token } },
        {
          module: '@consortium/plugin-cobbler',
          config: {
            url: cobbler.url,
            username: 'consortium',
            password: 'pxe-secret',
            defaultProfile: 'debian12',
          },
        },
      ],
    }),
  );
  // The server in this process (the consort binary is a child process): a lighter start than a second binary.
  const started = await startInProcess({ CONSORTIUM_CONFIG: configFile, CONSORTIUM_OBSERVE_SECONDS: '0' });
  api = started.api;
  stop = () => started.stop();
}, 60_000);

afterAll(async () => {
  await stop();
  await cobbler.stop();
  await netbox.stop();
  data.remove();
}, 30_000);

function consort(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CONSORT, ...args],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          PATH: process.env['PATH'],
          HOME: data.dir,
          COLUMNS: '200',
          CONSORT_URL: api?.url,
          CONSORT_TOKEN: api?.token,
        },
      },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : (error.code as number | null), stdout, stderr });
      },
    );
  });
}

/** Requests that change a backend: NetBox's non-GET requests and Cobbler's calls other than reads. */
function backendWrites(): number {
  const reads = new Set(['get_systems', 'get_system', 'find_system', 'get_profiles', 'version']);
  return (
    netbox.state.requests.filter((r) => r.method !== 'GET').length +
    cobbler.calls.filter((c) => !reads.has(c.method)).length
  );
}

describe('consort discover and adopt', () => {
  it('prints the groups, adopts by name and with --all, and exits with the documented codes', async () => {
    const listed = await consort('discover');
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GROUP\s+NAME\s+PROVIDERS\s+DETAIL$/);
    expect(lines.slice(1, 4).map((line) => line.split(/\s{2,}/).slice(0, 3))).toEqual([
      ['adoptable', 'pxe-01', 'cobbler'],
      ['adoptable', 'pxe-02', 'cobbler'],
      ['adoptable', 'web-09', 'cobbler,netbox'],
    ]);
    expect(lines[3]).toContain('datacenter=pek1');
    expect(lines[3]).toContain('netboot=true');
    expect(lines.slice(4)).toEqual([
      '0 known (0 drifting), 3 adoptable, 0 orphaned',
      'adopt with: consort adopt host <name>... or --all',
    ]);

    const writes = backendWrites();
    for (const args of [
      ['adopt', 'host'],
      ['adopt', 'host', 'pxe-01', '--all'],
    ]) {
      expect(await consort(...args)).toMatchObject({
        code: 2,
        stderr: 'consort: name the objects to adopt, or give --all (not both)\n',
      });
    }
    const unknown = await consort('adopt', 'host', 'nowhere');
    expect(unknown).toMatchObject({ code: 4, stdout: '' });
    expect(unknown.stderr).toBe('consort: no backend holds a host named nowhere [NOT_FOUND]\n');

    const one = await consort('adopt', 'host', 'web-09');
    expect(one.stderr).toBe('');
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^host\/web-09\s+cobbler,netbox\s+/m);
    expect(one.stdout.trimEnd().split('\n').at(-1)).toBe('adopted 1 host; no backend was written');
    const twice = await consort('adopt', 'host', 'web-09');
    expect(twice.code).toBe(5);
    expect(twice.stderr).toBe('consort: host/web-09 already exists; nothing to adopt [CONFLICT]\n');

    const all = await consort('adopt', 'host', '--all', '-o', 'json');
    expect(all.code).toBe(0);
    const adopted = JSON.parse(all.stdout) as {
      kind: string;
      adopted: { name: string; providers: string[] }[];
    };
    expect(adopted.adopted.map((a) => [a.name, a.providers])).toEqual([
      ['pxe-01', ['cobbler']],
      ['pxe-02', ['cobbler']],
    ]);
    const none = await consort('adopt', 'host', '--all');
    expect(none).toMatchObject({
      code: 0,
      stdout: 'nothing to adopt: no backend holds a host without a node\n',
    });
    expect(backendWrites()).toBe(writes);

    // Changed by hand in NetBox: the known node drifts, and discover says where.
    netbox.state.vm('web-09').status = 'offline';
    const drifting = await consort('discover', 'host');
    expect(drifting.stdout).toMatch(
      /^known\s+web-09\s+cobbler,netbox\s+drift: status: active in the node, offline in netbox$/m,
    );
    expect(drifting.stdout).toContain('3 known (1 drifting), 0 adoptable, 0 orphaned');
    const yaml = parseYaml((await consort('discover', '-o', 'yaml')).stdout) as {
      known: { name: string; drift: { path: string; provider: string }[] }[];
    };
    expect(yaml.known.map((k) => [k.name, k.drift.map((d) => `${d.provider}:${d.path}`)])).toEqual([
      ['pxe-01', []],
      ['pxe-02', []],
      ['web-09', ['netbox:status']],
    ]);
  }, 120_000);
});
