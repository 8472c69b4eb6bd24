/**
 * `consortium dev` with its default plugins: the sandbox's simulated hypervisors are `hypervisor` nodes (seeded
 * from its config) with their simulated capacity observed, so `consort list hypervisor` is not empty; a simulated
 * VM lowers its hypervisor's free memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from './test-support/dev-server.js';
import { eventually, startInProcess } from './test-support/dev-server.js';

let dev: Awaited<ReturnType<typeof startInProcess>>;
let api: Api;

beforeAll(async () => {
  dev = await startInProcess({ CONSORTIUM_OBSERVE_SECONDS: '1' });
  api = dev.api;
}, 60_000);

afterAll(async () => {
  await dev.stop();
});

type Item = { name: string; attrs: Record<string, unknown> };
const hypervisors = async (): Promise<Item[]> =>
  ((await api.request('GET', '/api/inventory/hypervisor')).body as { items: Item[] }).items;

describe('the sandbox hypervisors as nodes', () => {
  it('lists the simulated hypervisors with their observed capacity', { timeout: 60_000 }, async () => {
    const listed = await eventually(async () => {
      const items = await hypervisors();
      return items.length === 2 && items.every((i) => i.attrs['memory_free_mib'] !== undefined)
        ? items
        : undefined;
    });
    expect(listed.map((i) => i.name)).toEqual(['sandbox-hv-1', 'sandbox-hv-2']);
    expect(listed[0]?.attrs).toMatchObject({
      schedulable: true,
      memory_total_mib: 32768,
      memory_free_mib: 32768,
      vcpus: 16,
      domains: 0,
    });
    const job = await api.request('POST', '/api/inventory/host?wait=30s', {
      body: { name: 'web-01', attrs: { hwspec: 'small' } },
    });
    expect(job.body).toMatchObject({ state: 'succeeded' });
    const node = (await api.request('GET', '/api/inventory/host/web-01')).body as Item;
    const on = node.attrs['hypervisor'];
    await eventually(async () => {
      const item = (await hypervisors()).find((i) => i.name === on);
      return item?.attrs['domains'] === 1 ? item : undefined;
    });
    const item = (await hypervisors()).find((i) => i.name === on);
    expect(item?.attrs['memory_free_mib']).toBeLessThan(32768);
    // A hypervisor that a host names cannot be deleted from under it.
    const refused = await api.request('DELETE', `/api/inventory/hypervisor/${String(on)}`);
    expect(refused.status).toBe(409);
  });
});
