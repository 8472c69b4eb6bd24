/**
 * Real backends for end-to-end tests and the provisioning benchmark: the NetBox and Cobbler test servers, the
 * libvirt lab (real libvirtd and sshd) and a real PowerDNS (testkit's harness), with a `consortium` config that
 * points the real plugins at them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CobblerTestServer as CobblerServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import type { PowerDnsHarness } from '@consortium/testkit';
import { startPowerDns } from '@consortium/testkit';

/** The forward zone of datacenter pek1 in the backends' PowerDNS. */
export const PEK1_ZONE = 'pek1.lab.example';

/** The four backends and the config file that names them. */
export interface Backends {
  readonly netbox: NetboxServer;
  readonly cobbler: CobblerServer;
  readonly lab: LibvirtLab;
  /** PowerDNS with the zone pek1.lab.example and the reverse zones of 10.1.2.0/24 and 10.9.0.0/24. */
  readonly powerdns: PowerDnsHarness;
  readonly configFile: string;
  stop(): Promise<void>;
}

/** Starts the backends and writes `<dir>/backends.yaml` for `consortium dev --config`. */
export async function startBackends(dir: string): Promise<Backends> {
  const lab = await startLibvirtLab();
  const cobbler = await startCobblerServer({ users: { consortium: 'pxe-secret' }, profiles: ['debian12'] });
  const netbox = await startNetboxServer();
  netbox.seed({ sites: [{ name: 'Peking 1', slug: 'pek1' }] });
  // The reverse zones of the subnets the end-to-end test (10.1.2.0/24) and the benchmark (10.9.0.0/24) use.
  const powerdns = await startPowerDns({ zones: [PEK1_ZONE, '2.1.10.in-addr.arpa', '0.9.10.in-addr.arpa'] });
  const configFile = join(dir, 'backends.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      log: { level: 'info', format: 'json' },
      plugins: [
        { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
        { module: '@consortium/plugin-ipam' },
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
        {
          module: '@consortium/plugin-libvirt',
          config: {
            hypervisors: [
              {
                name: 'lab',
                host: lab.host,
                port: lab.port,
                user: lab.user,
                privateKey: lab.privateKey,
                hostKey: lab.hostKey,
                memoryMib: 4096,
                domainType: 'qemu',
                network: { type: 'user' },
              },
            ],
            hwspecs: {
              small: { vcpus: 1, memoryMib: 48 },
              medium: { vcpus: 1, memoryMib: 64 },
              large: { vcpus: 1, memoryMib: 96 },
            },
          },
        },
        {
          module: '@consortium/plugin-powerdns',
          config: { url: powerdns.apiUrl, apiKey: powerdns.apiKey, forwardZones: { pek1: PEK1_ZONE } },
        },
      ],
    }),
  );
  return {
    netbox,
    cobbler,
    lab,
    powerdns,
    configFile,
    async stop() {
      for (const name of await lab.domains())
        if (name.startsWith('e2e-') || name.startsWith('bench-')) await lab.removeDomain(name);
      await netbox.stop();
      await cobbler.stop();
      await powerdns.stop();
      await lab.stop();
    },
  };
}
