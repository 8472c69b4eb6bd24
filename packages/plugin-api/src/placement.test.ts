import { describe, expect, it } from 'vitest';
import type { HypervisorUsage } from './placement.js';
import { describeFree, fits, freeOn, hwspecOf, macFor, place } from './placement.js';

const SMALL = { vcpus: 1, memoryMib: 1024 };
const usage = (name: string, memoryMib: number, domains: number[] = [], vcpus?: number): HypervisorUsage => ({
  name,
  capacity: { memoryMib, ...(vcpus === undefined ? {} : { vcpus }) },
  domains: domains.map((m, i) => ({ name: `${name}-vm${i}`, memoryMib: m, vcpus: 1 })),
});

describe('placement', () => {
  it('counts the memory of every defined domain against the capacity', () => {
    expect(freeOn(usage('hv-1', 8192, [1024, 2048]))).toEqual({ memoryMib: 5120, vcpus: undefined });
    expect(freeOn(usage('hv-1', 8192, [1024, 2048]), 'hv-1-vm1')).toEqual({
      memoryMib: 7168,
      vcpus: undefined,
    });
    expect(describeFree(usage('hv-1', 8192, [1024], 4))).toBe(
      'hv-1 has 7168 MiB free of 8192 MiB and 3 of 4 vcpus',
    );
  });

  it('picks the hypervisor with the most free memory, not the biggest one', () => {
    const big = usage('hv-big', 16384, [4096, 4096, 4096]);
    const small = usage('hv-small', 8192);
    expect(place([big, small], SMALL)).toBe('hv-small');
    expect(place([usage('a', 4096), usage('b', 4096)], SMALL)).toBe('a');
  });

  it('places nothing where the VM does not fit, counting vcpus only when capped', () => {
    expect(place([usage('a', 1000), usage('b', 4096, [3500])], SMALL)).toBeUndefined();
    expect(fits(usage('a', 4096, [], 1), { vcpus: 2, memoryMib: 1024 })).toBe(false);
    expect(fits(usage('a', 4096, [1024, 1024, 1024]), { vcpus: 64, memoryMib: 1024 })).toBe(true);
  });

  it('names the hwspec by memory, preferring one that matches the vcpus too', () => {
    const hwspecs = {
      small: { vcpus: 1, memoryMib: 48 },
      tiny: { vcpus: 2, memoryMib: 48 },
      big: { vcpus: 1, memoryMib: 96 },
    };
    expect(hwspecOf(hwspecs, 48, 2)).toBe('tiny');
    expect(hwspecOf(hwspecs, 48, 4)).toBe('small');
    expect(hwspecOf(hwspecs, 64, 1)).toBeUndefined();
  });

  it('derives a stable QEMU MAC from the host name and avoids taken ones', () => {
    const mac = macFor('web-01', new Set());
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(macFor('web-01', new Set())).toBe(mac);
    expect(macFor('web-02', new Set())).not.toBe(mac);
    const other = macFor('web-01', new Set([mac]));
    expect(other).not.toBe(mac);
    expect(other).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});
