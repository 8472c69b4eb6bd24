/**
 * The provider contract for powerdns against a real PowerDNS (testkit's harness). Writes are counted where PowerDNS
 * sees them: every PATCH bumps the zone's SOA serial, so the sum of serials grows with each write. What PowerDNS
 * holds for a host is its A record and PTR; the transient fault is PowerDNS killed (connections refused), ended by
 * starting it again on the same ports and database.
 */
import { silentLogger } from '@consortium/plugin-api';
import { openSqliteStore } from '@consortium/store-sqlite';
import type { PowerDnsHarness } from '@consortium/testkit';
import { describeProviderContract, startPowerDns } from '@consortium/testkit';
import { afterAll, beforeAll } from 'vitest';
import { plugin } from './index.js';

let pdns: PowerDnsHarness;
/** Addresses stay unique across tests: PowerDNS keeps what a test leaves. */
let hosts = 0;

beforeAll(async () => {
  pdns = await startPowerDns({ zones: ['contract.example', '8.10.in-addr.arpa'] });
}, 60_000);

afterAll(async () => {
  await pdns.stop();
});

describeProviderContract('powerdns (PowerDNS 4 with SQLite)', async () => {
  const store = await openSqliteStore({ path: ':memory:' });
  await store.insertNode('subnet', 'contract', { present: true, cidr: '10.8.0.0/16' }, 0);
  const [provider] = plugin.providers(
    { url: pdns.apiUrl, apiKey: pdns.apiKey, forwardZone: 'contract.example' },
    { logger: silentLogger, store, now: () => Date.now() },
  );
  if (provider === undefined) throw new Error('powerdns has no provider');
  const ips = new Map<string, string>();
  let killed = false;
  return {
    provider,
    create: (name) => {
      const n = ++hosts;
      const ip = `10.8.${String(Math.floor(n / 250))}.${String((n % 250) + 1)}`;
      ips.set(name, ip);
      return {
        node: { present: true, interfaces: [{ name: 'eth0', ip }] },
        updates: [{ path: 'fqdn', op: 'set', value: `${name}.contract.example` }],
      };
    },
    writes: async () => {
      const zones = (await pdns.api('GET', '/zones')).body as { serial: number }[];
      return zones.reduce((sum, zone) => sum + zone.serial, 0);
    },
    holds: async (name) => {
      const ip = ips.get(name);
      const a = await pdns.query(`${name}.contract.example`);
      const ptr =
        ip === undefined ? [] : await pdns.query(ip.split('.').reverse().join('.') + '.in-addr.arpa', 'PTR');
      return a.length === 0 && ptr.length === 0 ? null : { a, ptr };
    },
    injectTransientFault: async () => {
      killed = true;
      await pdns.kill();
    },
    clearFaults: async () => {
      if (!killed) return;
      killed = false;
      await pdns.restart();
    },
    cleanup: () => store.close(),
  };
});
