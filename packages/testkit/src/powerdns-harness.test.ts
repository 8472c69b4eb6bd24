import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPowerDns } from './powerdns-harness.js';
import type { PowerDnsHarness } from './powerdns-harness.js';

describe('PowerDNS harness', () => {
  let pdns: PowerDnsHarness;

  beforeAll(async () => {
    pdns = await startPowerDns({ zones: ['example.com', '2.1.10.in-addr.arpa'] });
  }, 60_000);

  afterAll(async () => {
    await pdns.stop();
  });

  it('listens on loopback only, API and DNS on two ports, and keeps every file in its own directory', () => {
    expect(pdns.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(pdns.apiUrl).not.toBe(`http://127.0.0.1:${String(pdns.dnsPort)}`);
    const pid = Number(readFileSync(`${pdns.dir}/pdns.pid`, 'utf8').trim());
    const sockets = execFileSync('ss', ['-Hlnup', '-t'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`pid=${String(pid)},`));
    const listening = sockets.map((line) => {
      const columns = line.split(/\s+/);
      return `${columns[0] ?? ''} ${columns[4] ?? ''}`;
    });
    const dns = `127.0.0.1:${String(pdns.dnsPort)}`;
    expect(listening.sort()).toEqual(
      [`tcp 127.0.0.1:${new URL(pdns.apiUrl).port}`, `tcp ${dns}`, `udp ${dns}`].sort(),
    );
    expect(existsSync(`${pdns.dir}/pdns.controlsocket`)).toBe(true);
  });

  it('serves over DNS what the API writes, A and PTR', async () => {
    const patch = await pdns.api('PATCH', '/zones/example.com.', {
      rrsets: [
        {
          name: 'web-01.example.com.',
          type: 'A',
          ttl: 60,
          changetype: 'REPLACE',
          records: [{ content: '10.1.2.10', disabled: false }],
        },
      ],
    });
    expect(patch.status).toBe(204);
    await pdns.api('PATCH', '/zones/2.1.10.in-addr.arpa.', {
      rrsets: [
        {
          name: '10.2.1.10.in-addr.arpa.',
          type: 'PTR',
          ttl: 60,
          changetype: 'REPLACE',
          records: [{ content: 'web-01.example.com.', disabled: false }],
        },
      ],
    });
    expect(await pdns.dig('web-01.example.com')).toEqual(['10.1.2.10']);
    expect(await pdns.dig('10.2.1.10.in-addr.arpa', 'PTR')).toEqual(['web-01.example.com.']);
    expect(await pdns.dig('web-02.example.com')).toEqual([]);
    // The in-process resolver answers the same, without the final dot.
    expect(await pdns.query('web-01.example.com')).toEqual(['10.1.2.10']);
    expect(await pdns.query('10.2.1.10.in-addr.arpa', 'PTR')).toEqual(['web-01.example.com']);
    expect(await pdns.query('web-02.example.com')).toEqual([]);
    expect(await pdns.query('example.com', 'PTR')).toEqual([]);
  });

  it('refuses a wrong API key', async () => {
    const response = await fetch(`${pdns.apiUrl}/api/v1/servers/localhost/zones`, {
      headers: { 'x-api-key': 'wrong', accept: 'application/json' },
    });
    expect(response.status).toBe(401);
  });

  it('creates and deletes zones, a repeat being fine', async () => {
    await pdns.createZone('other.test');
    await pdns.createZone('other.test.');
    expect((await pdns.api('GET', '/zones/other.test.')).status).toBe(200);
    await pdns.deleteZone('other.test');
    await pdns.deleteZone('other.test');
    expect((await pdns.api('GET', '/zones/other.test.')).status).toBe(404);
  });

  it('keeps the data across a kill and a restart on the same ports', async () => {
    await pdns.kill();
    await expect(pdns.api('GET', '/zones')).rejects.toThrow('fetch failed');
    await pdns.restart();
    expect(await pdns.dig('web-01.example.com')).toEqual(['10.1.2.10']);
  }, 30_000);

  it('removes everything when stopped, once or twice', async () => {
    const other = await startPowerDns();
    expect(existsSync(other.dir)).toBe(true);
    await other.stop();
    await other.stop();
    expect(existsSync(other.dir)).toBe(false);
    await expect(other.api('GET', '/zones')).rejects.toThrow('fetch failed');
    await expect(other.restart()).rejects.toThrow('PowerDNS harness was stopped; start a new one');
  }, 60_000);
});
