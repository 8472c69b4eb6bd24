/**
 * A failed create is rolled back like a delete: every provider removes what it made (the address ipam reserved,
 * the VM the sandbox defined), the node goes, and the same create can run again. Runs `consortium dev` in-process
 * with its sandbox (two simulated hypervisors, 16 vcpus each: four `large` VMs fill them) and ipam.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from './test-support/dev-server.js';
import { startInProcess } from './test-support/dev-server.js';

let api: Api;
let stop: () => Promise<void>;

beforeAll(async () => {
  const started = await startInProcess();
  api = started.api;
  stop = () => started.stop();
}, 60_000);

afterAll(async () => {
  await stop();
});

async function create(name: string, attrs: Record<string, unknown>): Promise<any> {
  const r = await api.request('POST', '/api/inventory/host?wait=60s', { body: { name, attrs } });
  expect(r.status).toBe(200);
  return r.body;
}

describe('a failed create', () => {
  it('leaks no address and no VM: five failed creates on a /29, then a good one succeeds', async () => {
    // 10.9.0.0/29: .1 is the gateway, .2 to .6 are the five addresses hosts can get.
    const subnet = await api.request('POST', '/api/inventory/subnet?wait=30s', {
      body: { name: 'tiny', attrs: { cidr: '10.9.0.0/29', gateway: '10.9.0.1' } },
    });
    expect(subnet.body.state).toBe('succeeded');
    for (const name of ['full-1', 'full-2', 'full-3', 'full-4'])
      expect((await create(name, { hwspec: 'large' })).state).toBe('succeeded');

    // No room for a fifth large VM: the sandbox refuses it after ipam has reserved an address.
    for (let i = 1; i <= 5; i++) {
      const failed = await create(`no-room-${i}`, { subnet: 'tiny', hwspec: 'large' });
      expect(failed.state).toBe('failed');
      expect(failed.failure.code).toBe('REJECTED');
      expect(failed.failure.message).toBe(
        'sandbox-vm rejected hwspec="large": no simulated hypervisor has room for a large: 8 vcpus, 16384 MiB VM; rolled back: what it made was removed',
      );
      expect(failed.rollback.state).toBe('succeeded');
      expect((await api.request('GET', `/api/inventory/host/no-room-${i}`)).status).toBe(404);
    }

    // Room for one: a create with an unknown subnet defines the VM before ipam refuses it; the rollback undefines it.
    expect((await api.request('DELETE', '/api/inventory/host/full-4?wait=30s')).body.state).toBe('succeeded');
    for (let run = 1; run <= 2; run++) {
      // The same command twice: it fails the same way both times (not 409), and leaves nothing behind.
      const failed = await create('lost-vm', { subnet: 'nowhere', hwspec: 'large' });
      expect(failed.state).toBe('failed');
      expect(failed.failure.message).toBe(
        'ipam rejected subnet="nowhere": subnet "nowhere" does not exist; rolled back: what it made was removed',
      );
      expect(failed.rounds[0].tasks.map((t: any) => t.outcome?.operations?.[0]?.action)).toContain('define');
      expect(failed.rollback.rounds[0].tasks.flatMap((t: any) => t.outcome?.operations ?? [])).toContainEqual(
        expect.objectContaining({ action: 'undefine' }),
      );
      expect((await api.request('GET', '/api/inventory/host/lost-vm')).status).toBe(404);
    }

    // The address and the room are both free again.
    const good = await create('fits', { subnet: 'tiny', hwspec: 'large' });
    expect(good.state).toBe('succeeded');
    const host = await api.request('GET', '/api/inventory/host/fits');
    expect(host.body.attrs.interfaces[0].ip).toBe('10.9.0.2');
    expect(host.body.attrs.hypervisor).toMatch(/^sandbox-hv-/);
  }, 120_000);
});
