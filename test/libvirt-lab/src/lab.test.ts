/**
 * The lab itself: sshd lets only the lab's key in, the lab user runs virsh on the real libvirtd over SSH, a tiny
 * TCG domain starts, and a second lab in the same process shares the daemons.
 */
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandResult, LibvirtLab } from './index.js';
import { LAB_URI, startLibvirtLab } from './index.js';

let lab: LibvirtLab;
const DOMAIN = 'lab-selftest-1';

function ssh(
  options: { port: number; user: string; privateKey: string; hostKey: string },
  command: string,
): Promise<CommandResult> {
  const expected = Buffer.from(options.hostKey.split(' ')[1]!, 'base64');
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('error', reject);
    client.once('ready', () => {
      client.exec(command, (error, stream) => {
        if (error !== undefined) {
          reject(error);
          return;
        }
        let stdout = '';
        let stderr = '';
        stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        stream.on('close', (code: number) => {
          client.end();
          resolve({ code, stdout, stderr });
        });
      });
    });
    client.connect({
      host: '127.0.0.1',
      port: options.port,
      username: options.user,
      privateKey: options.privateKey,
      hostVerifier: (key: Buffer) => key.equals(expected),
      readyTimeout: 10_000,
    });
  });
}

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterAll(async () => {
  await lab.removeDomain(DOMAIN);
  await lab.stop();
});

describe('startLibvirtLab', () => {
  it('serves qemu:///system over a key-only sshd on loopback', async () => {
    expect(lab.host).toBe('127.0.0.1');
    expect(lab.uri).toBe(LAB_URI);
    expect(lab.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(lab.hostKey).toMatch(/^ssh-ed25519 AAAA/);
    expect(lab.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const result = await ssh(lab, `virsh -c ${LAB_URI} uri && id -nG`);
    expect(result.code).toBe(0);
    const [uri, groups] = result.stdout.split('\n').filter((line) => line !== '');
    expect(uri).toBe(LAB_URI);
    expect(groups!.split(' ')).toContain('libvirt');
  });

  it('refuses a key that is not authorized, and root', async () => {
    const other = await startLibvirtLab();
    try {
      await expect(ssh({ ...lab, privateKey: other.privateKey }, 'true')).rejects.toThrow(
        'All configured authentication methods failed',
      );
      await expect(ssh({ ...lab, user: 'root' }, 'true')).rejects.toThrow(
        'All configured authentication methods failed',
      );
      // The second lab shares libvirtd and has its own sshd.
      expect(other.port).not.toBe(lab.port);
      expect((await ssh(other, `virsh -c ${LAB_URI} uri`)).stdout.trim()).toBe(LAB_URI);
    } finally {
      await other.stop();
    }
    // The first lab still works after the second one stopped.
    expect((await lab.virsh(['uri'])).trim()).toBe(LAB_URI);
  });

  it('starts a tiny diskless TCG domain defined over SSH', async () => {
    const xml = `<domain type='qemu'><name>${DOMAIN}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
      <devices><interface type='user'><mac address='52:54:00:fe:00:01'/></interface></devices></domain>`;
    const defined = await ssh(lab, `virsh -c ${LAB_URI} define /dev/stdin <<'EOF'\n${xml}\nEOF`);
    expect(defined.stderr).toBe('');
    expect(defined.code).toBe(0);
    await lab.virsh(['start', DOMAIN]);
    expect((await lab.virsh(['domstate', DOMAIN])).trim()).toBe('running');
    expect(await lab.domains()).toContain(DOMAIN);
    await lab.removeDomain(DOMAIN);
    expect(await lab.domains()).not.toContain(DOMAIN);
    expect((await lab.tryVirsh(['dominfo', DOMAIN])).stderr).toContain(`failed to get domain '${DOMAIN}'`);
  });

  it('stop() kills its sshd and may be called twice', async () => {
    const other = await startLibvirtLab();
    await other.stop();
    await other.stop();
    await expect(ssh(other, 'true')).rejects.toThrow(/ECONNREFUSED/);
  });
});
