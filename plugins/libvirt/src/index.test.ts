import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, silentLogger } from '@consortium/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LibvirtConfig, LibvirtHypervisorConfig, LibvirtProvider } from './index.js';
import { plugin } from './index.js';

// A throwaway key made for the test run (no key material lives in the repository).
let KEY: string;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'libvirt-config-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  KEY = readFileSync(join(dir, 'key'), 'utf8');
  rmSync(dir, { recursive: true, force: true });
});
const HOST_KEY = 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU';

const services = { logger: silentLogger, store: undefined as never, now: () => Date.now() };
const made: LibvirtProvider[] = [];
afterEach(() => {
  for (const provider of made.splice(0)) provider.close();
});

/** The providers of a config with one hypervisor; `entry` overrides its fields (undefined removes one). */
function providers(
  config: Partial<LibvirtConfig>,
  entry: { [K in keyof LibvirtHypervisorConfig]?: LibvirtHypervisorConfig[K] | undefined } = {},
) {
  const fields = {
    name: 'hv-1',
    host: 'hv-1.example.com',
    user: 'consortium',
    privateKey: KEY,
    hostKey: HOST_KEY,
    memoryMib: 65536,
    ...entry,
  };
  const hypervisor = Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined),
  ) as unknown as LibvirtHypervisorConfig;
  // The first provider is for hosts; the second observes hypervisor nodes' capacity over the same connections.
  const list = plugin.providers({ hypervisors: [hypervisor], ...config }, services) as LibvirtProvider[];
  made.push(list[0] as LibvirtProvider);
  return list;
}

describe('the libvirt plugin', () => {
  it('makes one provider claiming hwspec, power, hypervisor and the MAC, sized by config', () => {
    const [provider] = providers({ hwspecs: { tiny: { vcpus: 1, memoryMib: 48 } } });
    expect(plugin.id).toBe('libvirt');
    expect(provider!.name).toBe('libvirt');
    expect(provider!.kind).toBe('host');
    expect(provider!.claims.map((c) => c.path)).toEqual([
      'hwspec',
      'power',
      'hypervisor',
      'interfaces[*].mac',
    ]);
    expect(provider!.claims[0]!.schema).toMatchObject({
      enum: ['tiny'],
      description: 'VM size: tiny = 1 vcpus, 48 MiB',
    });
    expect(providers({})[0]!.claims[0]!.schema).toMatchObject({ enum: ['small', 'medium', 'large'] });
  });

  it('reads the key from a file or the environment, and refuses one it cannot use', () => {
    process.env['LIBVIRT_TEST_KEY'] = KEY;
    expect(providers({}, { privateKey: undefined, privateKeyEnv: 'LIBVIRT_TEST_KEY' })).toHaveLength(2);
    delete process.env['LIBVIRT_TEST_KEY'];
    expect(() => providers({}, { privateKey: undefined, privateKeyEnv: 'LIBVIRT_TEST_KEY' })).toThrow(
      new InputError(
        'plugin libvirt, hypervisor hv-1: the environment variable LIBVIRT_TEST_KEY (privateKeyEnv) is not set',
      ),
    );
    expect(() => providers({}, { privateKey: undefined, privateKeyFile: '/nonexistent/key' })).toThrow(
      /^plugin libvirt, hypervisor hv-1: cannot read privateKeyFile \/nonexistent\/key: ENOENT/,
    );
    expect(() => providers({}, { privateKey: 'not a key' })).toThrow(
      /^plugin libvirt, hypervisor hv-1: the private key cannot be used: /,
    );
  });

  it('refuses a hypervisor configured twice, a bad host key and a network without a source', () => {
    const entry = { name: 'hv-1', host: 'h', user: 'u', privateKey: KEY, hostKey: HOST_KEY, memoryMib: 1 };
    expect(() => plugin.providers({ hypervisors: [entry, entry] }, services)).toThrow(
      'plugin libvirt: hypervisor hv-1 is configured twice',
    );
    expect(() => providers({}, { hostKey: 'nope' })).toThrow(/hypervisor hv-1: hostKey must be/);
    expect(() => providers({}, { network: { type: 'bridge' } })).toThrow(
      'plugin libvirt, hypervisor hv-1: network type bridge needs a source',
    );
  });
});
