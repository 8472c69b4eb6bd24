/**
 * Configuration management against the real binaries: `consort enc` prints what Puppet's external_nodes expects
 * (valid YAML with `classes` and `parameters`), and Debian's `ansible-inventory` reads `consort inventory` as a
 * dynamic inventory script.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { BinaryServer } from '@consortium/server/test-support';
import { spawnBinary, tempDir } from '@consortium/server/test-support';
import { ansibleInventory, groupName } from './config-management.js';

const CONSORT = fileURLToPath(new URL('../bin/consort.js', import.meta.url));

let server: BinaryServer;
const data = tempDir();
const home = tempDir('consort-cm-');

beforeAll(async () => {
  server = await spawnBinary(data.dir);
  const { api } = server;
  const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
    body: { name: 'cm-net', attrs: { cidr: '10.7.0.0/24', gateway: '10.7.0.1', datacenter: 'pek1' } },
  });
  expect(subnet.body.state).toBe('succeeded');
  for (const [name, roles] of [
    ['web-01', ['nginx', 'base']],
    ['db-01', ['postgresql', 'base']],
  ] as const) {
    const r = await api.request('POST', '/api/inventory/host?wait=60s', {
      body: {
        name,
        attrs: {
          hwspec: 'small',
          datacenter: 'pek1',
          subcluster: name.slice(0, 2) === 'we' ? 'web' : 'db',
          subnet: 'cm-net',
          puppet_roles: roles,
        },
      },
    });
    expect(r.body.state).toBe('succeeded');
  }
}, 120_000);

afterAll(() => {
  server.child.kill('SIGTERM');
  data.remove();
  home.remove();
});

const env = (): Record<string, string> => ({
  PATH: process.env['PATH'] ?? '',
  HOME: home.dir,
  XDG_CONFIG_HOME: join(home.dir, 'config'),
  XDG_CACHE_HOME: join(home.dir, 'cache'),
  CONSORT_URL: server.api.url,
  CONSORT_TOKEN: server.api.token,
});

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, env: env() });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('Puppet ENC', () => {
  it('answers YAML with classes from puppet_roles and parameters from the other attributes', async () => {
    const r = await fetch(`${server.api.url}/api/enc/web-01`, {
      headers: { authorization: `Bearer ${server.api.token}` },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/yaml/);
    const enc = parseYaml(await r.text()) as { classes: string[]; parameters: Record<string, unknown> };
    expect(Object.keys(enc).sort()).toEqual(['classes', 'parameters']);
    expect(enc.classes).toEqual(['nginx', 'base']);
    expect(enc.parameters).toMatchObject({
      datacenter: 'pek1',
      subcluster: 'web',
      hwspec: 'small',
      subnet: 'cm-net',
    });
    expect(enc.parameters).not.toHaveProperty('puppet_roles');
    expect(enc.parameters).not.toHaveProperty('present');
  });

  it('consort enc is an external_nodes script: YAML on stdout and exit 0, or exit 1 for an unknown node', () => {
    const ok = run(process.execPath, [CONSORT, 'enc', 'db-01']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const enc = parseYaml(ok.stdout) as { classes: string[]; parameters: Record<string, unknown> };
    expect(enc.classes).toEqual(['postgresql', 'base']);
    expect(enc.parameters['subcluster']).toBe('db');
    const missing = run(process.execPath, [CONSORT, 'enc', 'nope-01']);
    expect(missing.code).toBe(4); // not found
    expect(missing.stderr).toBe('consort: host/nope-01 does not exist\n');
  });
});

describe('Ansible dynamic inventory', () => {
  it('groups by kind, datacenter, subcluster and role; ansible_host from the first interface', () => {
    const inventory = ansibleInventory([
      {
        kind: 'host',
        name: 'a-1',
        attrs: {
          present: true,
          datacenter: 'pek-1',
          puppet_roles: ['x'],
          interfaces: [{ name: 'eth0', ip: '10.0.0.5' }],
        },
      },
      { kind: 'hypervisor', name: 'hv-1', attrs: { datacenter: 'pek-1' } },
    ]);
    expect(inventory).toEqual({
      _meta: {
        hostvars: {
          'a-1': {
            datacenter: 'pek-1',
            puppet_roles: ['x'],
            interfaces: [{ name: 'eth0', ip: '10.0.0.5' }],
            ansible_host: '10.0.0.5',
          },
          'hv-1': { datacenter: 'pek-1' },
        },
      },
      all: { children: ['ungrouped', 'datacenter_pek_1', 'kind_host', 'kind_hypervisor', 'role_x'] },
      ungrouped: { hosts: [] },
      datacenter_pek_1: { hosts: ['a-1', 'hv-1'] },
      kind_host: { hosts: ['a-1'] },
      kind_hypervisor: { hosts: ['hv-1'] },
      role_x: { hosts: ['a-1'] },
    });
    expect(groupName('role', 'web.front-end')).toBe('role_web_front_end');
  });

  it('is read by ansible-inventory --list and --host', () => {
    const probe = spawnSync('ansible-inventory', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0)
      throw new Error('ansible-inventory is missing: scripts/install-system-deps.sh installs ansible-core');
    const script = join(home.dir, 'consort-inventory');
    writeFileSync(script, `#!/bin/sh\nexec ${process.execPath} ${CONSORT} inventory "$@"\n`);
    chmodSync(script, 0o755);
    const ansibleEnv = ['-i', script];
    const list = run('ansible-inventory', [...ansibleEnv, '--list']);
    expect(list.code, list.stderr).toBe(0);
    const inventory = JSON.parse(list.stdout) as Record<string, any>;
    const web = inventory['_meta'].hostvars['web-01'];
    expect(web.ansible_host).toMatch(/^10\.7\.0\.\d+$/);
    expect(web.ansible_host).toBe(web.interfaces[0].ip);
    expect(web.puppet_roles).toEqual(['nginx', 'base']);
    expect(inventory['datacenter_pek1'].hosts.sort()).toEqual(['db-01', 'web-01']);
    expect(inventory['subcluster_web'].hosts).toEqual(['web-01']);
    expect(inventory['role_base'].hosts.sort()).toEqual(['db-01', 'web-01']);
    expect(inventory['role_nginx'].hosts).toEqual(['web-01']);
    expect(inventory['kind_host'].hosts.sort()).toEqual(['db-01', 'web-01']);
    const host = run('ansible-inventory', [...ansibleEnv, '--host', 'db-01']);
    expect(host.code, host.stderr).toBe(0);
    expect(JSON.parse(host.stdout)).toMatchObject({ subcluster: 'db', puppet_roles: ['postgresql', 'base'] });
  }, 60_000);
});
