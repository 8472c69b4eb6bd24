import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  networkContains,
  formatCidr,
  formatIpv4,
  hostAddresses,
  isHostAddress,
  parseCidr,
  parseIpv4,
  prefixMask,
} from './ipv4.js';

describe('IPv4 addresses', () => {
  it('parses dotted quads and refuses anything else', () => {
    expect(parseIpv4('10.1.2.34')).toBe(10 * 2 ** 24 + 1 * 2 ** 16 + 2 * 2 ** 8 + 34);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(parseIpv4('255.255.255.255')).toBe(2 ** 32 - 1);
    for (const bad of [
      '',
      '10.1.2',
      '10.1.2.3.4',
      '10.1.2.256',
      '10.1.2.03',
      '10.1.2.-1',
      '10.1.2.a',
      ' 10.1.2.3',
    ]) {
      expect(parseIpv4(bad), bad).toBeUndefined();
    }
  });

  it('round-trips every address', () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        const parsed = parseIpv4(text);
        expect(parsed).toBeDefined();
        expect(formatIpv4(parsed!)).toBe(text);
      }),
    );
  });

  it('formats netmasks of prefix lengths', () => {
    expect(formatIpv4(prefixMask(24))).toBe('255.255.255.0');
    expect(formatIpv4(prefixMask(0))).toBe('0.0.0.0');
    expect(formatIpv4(prefixMask(32))).toBe('255.255.255.255');
    expect(formatIpv4(prefixMask(20))).toBe('255.255.240.0');
  });
});

describe('IPv4 networks', () => {
  it('parses CIDR notation, clearing host bits', () => {
    const net = parseCidr('10.1.2.0/24')!;
    expect(formatIpv4(net.network)).toBe('10.1.2.0');
    expect(formatIpv4(net.broadcast)).toBe('10.1.2.255');
    expect(net.prefix).toBe(24);
    expect(formatCidr(parseCidr('10.1.2.77/26')!)).toBe('10.1.2.64/26');
    expect(formatCidr(parseCidr('0.0.0.0/0')!)).toBe('0.0.0.0/0');
    for (const bad of [
      '10.1.2.0',
      '10.1.2.0/33',
      '10.1.2.0/-1',
      '10.1.2/24',
      '10.1.2.0/024',
      '10.1.2.0/24 ',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it('lists host addresses lowest first, without network and broadcast', () => {
    const net = parseCidr('192.168.0.0/29')!;
    expect([...hostAddresses(net)].map(formatIpv4)).toEqual([
      '192.168.0.1',
      '192.168.0.2',
      '192.168.0.3',
      '192.168.0.4',
      '192.168.0.5',
      '192.168.0.6',
    ]);
    expect([...hostAddresses(parseCidr('192.168.0.4/31')!)].map(formatIpv4)).toEqual([
      '192.168.0.4',
      '192.168.0.5',
    ]);
    expect([...hostAddresses(parseCidr('192.168.0.9/32')!)].map(formatIpv4)).toEqual(['192.168.0.9']);
    expect(isHostAddress(net, parseIpv4('192.168.0.0')!)).toBe(false);
    expect(isHostAddress(net, parseIpv4('192.168.0.7')!)).toBe(false);
    expect(isHostAddress(net, parseIpv4('192.168.0.8')!)).toBe(false);
    expect(isHostAddress(net, parseIpv4('192.168.0.6')!)).toBe(true);
    expect(networkContains(net, parseIpv4('192.168.0.7')!)).toBe(true);
  });

  it('puts every host address inside its network', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 22, max: 32 }), (text, prefix) => {
        const net = parseCidr(`${text}/${prefix}`)!;
        const all = [...hostAddresses(net)];
        expect(all.length).toBe(prefix >= 31 ? 2 ** (32 - prefix) : 2 ** (32 - prefix) - 2);
        expect(all.every((a) => networkContains(net, a) && isHostAddress(net, a))).toBe(true);
        expect(networkContains(net, parseIpv4(text)!)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});
