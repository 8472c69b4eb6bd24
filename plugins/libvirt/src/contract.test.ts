/**
 * The provider contract for libvirt against the real lab (libvirtd over sshd). Writes are the virsh commands that
 * change a domain (define, start, destroy, undefine, metadata --set), counted on their way to the SSH session; a
 * transient fault is real: while it lasts the commands go to an SSH port nothing listens on.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ExecOptions, RemoteShell } from './index.js';
import { silentLogger } from '@consortium/plugin-api';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { describeProviderContract } from '@consortium/testkit';
import { afterAll, beforeAll } from 'vitest';
import type { LibvirtConfig, LibvirtProvider } from './index.js';
import { hypervisorsOf, libvirtProvider, Virsh } from './index.js';

const WRITES = / (define|start|destroy|undefine) |--set /;

let lab: LibvirtLab;

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterAll(async () => {
  await lab.stop();
});

/** A loopback port nothing listens on (the kernel handed it out and it was closed again). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

describeProviderContract('libvirt (libvirt lab)', async () => {
  const config = (port: number): LibvirtConfig => ({
    hypervisors: [
      {
        name: 'lab-a',
        host: lab.host,
        port,
        user: lab.user,
        privateKey: lab.privateKey,
        hostKey: lab.hostKey,
        memoryMib: 1_000_000,
        domainType: 'qemu',
        network: { type: 'user' },
      },
    ],
  });
  const [real] = hypervisorsOf(config(lab.port), silentLogger);
  const [dead] = hypervisorsOf(config(await closedPort()), silentLogger);
  if (real === undefined || dead === undefined) throw new Error('no hypervisor');
  let writes = 0;
  let down = false;
  const shell: RemoteShell = {
    get address() {
      return real.shell.address;
    },
    exec: (command: string, options: ExecOptions) => {
      if (down) return dead.shell.exec(command, options);
      if (WRITES.test(command)) writes++;
      return real.shell.exec(command, options);
    },
    close: () => {
      real.shell.close();
      dead.shell.close();
    },
  };
  const provider: LibvirtProvider = libvirtProvider({
    hypervisors: [{ ...real, shell, virsh: new Virsh('lab-a', shell, 'qemu:///system', 60_000) }],
    hwspecs: { small: { vcpus: 1, memoryMib: 48 } },
    interface: 'eth0',
    machine: 'pc',
  });
  const made: string[] = [];
  return {
    provider,
    create: (name) => {
      made.push(name);
      return {
        node: { present: true, netboot: true },
        updates: [
          { path: 'hwspec', op: 'set', value: 'small' },
          { path: 'power', op: 'set', value: 'on' },
        ],
      };
    },
    writes: () => Promise.resolve(writes),
    holds: async (name) => ((await lab.domains()).includes(name) ? name : null),
    injectTransientFault: () => {
      down = true;
      return Promise.resolve();
    },
    clearFaults: () => {
      down = false;
      return Promise.resolve();
    },
    cleanup: async () => {
      provider.close();
      const left = (await lab.domains()).filter((name) => made.includes(name));
      await Promise.all(left.map((name) => lab.removeDomain(name)));
    },
  };
});
