import { InputError } from '@consortium/core';
import { describe, expect, it } from 'vitest';
import { fingerprintOf, parseHostKey } from './host-key.js';

// The blob of an ed25519 public key: string "ssh-ed25519", then 32 key bytes.
const type = Buffer.from('ssh-ed25519');
const blob = Buffer.concat([
  Buffer.from([0, 0, 0, type.length]),
  type,
  Buffer.from([0, 0, 0, 32]),
  Buffer.alloc(32, 7),
]);
const line = `ssh-ed25519 ${blob.toString('base64')} root@hv-1`;
const other = Buffer.concat([blob.subarray(0, blob.length - 1), Buffer.from([8])]);

describe('parseHostKey', () => {
  it('takes an OpenSSH public key line and offers only its algorithm', () => {
    const key = parseHostKey(line, 'hv-1');
    expect(key.algorithms).toEqual(['ssh-ed25519']);
    expect(key.matches(blob)).toBe(true);
    expect(key.matches(other)).toBe(false);
    expect(key.fingerprint).toBe(fingerprintOf(blob));
    expect(parseHostKey(`[hv-1]:22 ${line}`, 'hv-1').matches(blob)).toBe(true);
  });

  it('takes a SHA256 fingerprint', () => {
    const key = parseHostKey(fingerprintOf(blob), 'hv-1');
    expect(key.algorithms).toBeUndefined();
    expect(key.matches(blob)).toBe(true);
    expect(key.matches(other)).toBe(false);
  });

  it('refuses anything else, naming where', () => {
    expect(() => parseHostKey('ssh-ed25519 bm90IGEga2V5', 'plugin libvirt, hypervisor hv-1')).toThrow(
      InputError,
    );
    expect(() => parseHostKey('MD5:aa:bb', 'plugin libvirt, hypervisor hv-1')).toThrow(
      /^plugin libvirt, hypervisor hv-1: hostKey must be an OpenSSH public key line/,
    );
  });
});
