import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '@consortium/core';
import { InputError, parsePath, silentLogger } from '@consortium/core';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { buildKinds, importPlugins } from './plugins.js';
import { tempDir } from './test-support/dev-server.js';

const dirs: { remove(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

function file(text: string): string {
  const d = tempDir();
  dirs.push(d);
  const path = join(d.dir, 'consortium.yaml');
  writeFileSync(path, text);
  return path;
}

function expectInputError(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(InputError);
  expect((thrown as Error).message).toBe(message);
}

describe('loadConfig', () => {
  it('layers defaults, file, environment and flags, in that order', () => {
    const path = file('web: { port: 9000, host: 0.0.0.0 }\nworker: { concurrency: 3 }\n');
    const config = loadConfig(
      { configFile: path, port: 9100 },
      { CONSORTIUM_PORT: '9050', CONSORTIUM_LOG_LEVEL: 'debug' },
    );
    expect(config.web).toEqual({
      host: '0.0.0.0',
      port: 9100,
      bodyLimit: '1mb',
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 30,
    });
    expect(config.worker.concurrency).toBe(3);
    expect(config.log.level).toBe('debug');
    expect(loadConfig({ configFile: path }, { CONSORTIUM_PORT: '9050' }).web.port).toBe(9050);
    expect(config.plugins.map((p) => p.module)).toEqual([
      '@consortium/plugin-inventory',
      '@consortium/plugin-ipam',
      '@consortium/plugin-sandbox',
    ]);
  });

  it('says what is wrong, one clear message', () => {
    expectInputError(
      () => loadConfig({ configFile: file('web: { port: 99999 }\nworkers: 2\n') }, {}),
      'invalid configuration: /: must NOT have additional properties (workers); /web/port: must be <= 65535',
    );
    expectInputError(
      () => loadConfig({}, { CONSORTIUM_PORT: 'eighty' }),
      'CONSORTIUM_PORT must be a whole number, not "eighty"',
    );
    expectInputError(
      () => loadConfig({ configFile: '/nonexistent/c.yaml' }, {}),
      'cannot read config file /nonexistent/c.yaml: ENOENT',
    );
    expect(() => loadConfig({ configFile: file('web: [unclosed\n') }, {})).toThrow(
      /^config file .* is not valid YAML: /,
    );
    expect(() => loadConfig({ configFile: file('- a\n- b\n') }, {})).toThrow(
      /must hold a mapping at the top level$/,
    );
  });
});

describe('deploy/config.example.yaml', () => {
  it('is a valid configuration', () => {
    const path = new URL('../../../deploy/config.example.yaml', import.meta.url).pathname;
    const config = loadConfig({ configFile: path }, {});
    expect(config.dataDir).toBe('/var/lib/consortium');
    expect(config.plugins.at(-1)).toEqual({ module: '@consortium/plugin-sandbox', config: { delayMs: 300 } });
  });
});

describe('deploy/cluster.example.yaml', () => {
  it('is valid and its plugins load without conflicting claims', async () => {
    const path = new URL('../../../deploy/cluster.example.yaml', import.meta.url).pathname;
    const config = loadConfig({ configFile: path }, {});
    expect(config.coordinator).toEqual({
      driver: 'etcd',
      endpoints: ['http://127.0.0.1:2379'],
      leaseTtlSeconds: 10,
    });
    const previous = {
      netbox: process.env['NETBOX_TOKEN'],
      cobbler: process.env['COBBLER_PASSWORD'],
      powerdns: process.env['PDNS_API_KEY'],
    };
    process.env['NETBOX_TOKEN'] = 'example-token';
    process.env['COBBLER_PASSWORD'] = 'example-password';
    process.env['PDNS_API_KEY'] = 'example-key';
    try {
      const kinds = buildKinds(await importPlugins(config.plugins), {
        logger: silentLogger,
        store: {} as Store,
        now: () => 0,
      });
      const host = kinds.get('host')!.schema;
      expect(host.authorityOf(parsePath('datacenter'))).toBe('netbox');
      expect(host.authorityOf(parsePath('netboot'))).toBe('cobbler');
      expect(host.authorityOf(parsePath('interfaces[eth0].ip'))).toBe('ipam');
      expect(host.authorityOf(parsePath('fqdn'))).toBe('powerdns');
      expect(host.watches.filter((w) => w.provider === 'powerdns').map((w) => w.path)).toEqual([
        'present',
        'hostname',
        'interfaces',
        'datacenter',
      ]);
    } finally {
      if (previous.netbox === undefined) delete process.env['NETBOX_TOKEN'];
      else process.env['NETBOX_TOKEN'] = previous.netbox;
      if (previous.cobbler === undefined) delete process.env['COBBLER_PASSWORD'];
      else process.env['COBBLER_PASSWORD'] = previous.cobbler;
      if (previous.powerdns === undefined) delete process.env['PDNS_API_KEY'];
      else process.env['PDNS_API_KEY'] = previous.powerdns;
    }
  });
});

describe('deploy/three-host', () => {
  it('web.yaml and control.yaml are valid: PostgreSQL and etcd over TLS, secrets only from files', () => {
    for (const file of ['web.yaml', 'control.yaml']) {
      const path = new URL(`../../../deploy/three-host/${file}`, import.meta.url).pathname;
      const config = loadConfig({ configFile: path }, {});
      expect(config.store).toMatchObject({
        driver: 'postgres',
        url: 'postgres://consortium@db-1:5432/consortium',
        migrations: 'manual',
        tls: { ca: '/etc/consortium/tls/ca.crt' },
      });
      expect(config.coordinator).toMatchObject({
        driver: 'etcd',
        endpoints: ['https://db-1:2379'],
        auth: { username: 'consortium', passwordFile: '/etc/consortium/etcd-password' },
      });
      expect(config.web.tls === undefined).toBe(file === 'control.yaml');
    }
  });
});
