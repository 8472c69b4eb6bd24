/**
 * The provider contract for libvirt against the real lab (libvirtd over sshd). Writes are the virsh commands that
 * change a domain (define, start, destroy, undefine, metadata --set), counted on their way to the SSH session (as
 * commands or as lines of the long-lived virsh); a transient fault is real: while it lasts the commands go to an SSH
 * port nothing listens on, and the virsh already open there is cut off.
 */
import type { ChannelHandlers, ExecOptions, RemoteChannel, RemoteShell } from './index.js';
import { silentLogger } from '@consortium/plugin-api';
import type { LibvirtLab } from '@consortium/test-libvirt-lab';
import { startLibvirtLab } from '@consortium/test-libvirt-lab';
import { afterAll, beforeAll } from 'vitest';
import type { LibvirtConfig, LibvirtProvider } from './index.js';
import { hypervisorsOf, libvirtProvider, Virsh } from './index.js';
import { describeProviderContract, freePort } from '@consortium/testkit';

/** A write as an exec command line (`virsh ... start web-01`) or a line of the virsh session (`start web-01`). */
const WRITES = /(^| )(define|start|destroy|undefine) |--set /;

let lab: LibvirtLab;

beforeAll(async () => {
  lab = await startLibvirtLab();
}, 120_000);

afterAll(async () => {
  await lab.stop();
});

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
  const [dead] = hypervisorsOf(config(await freePort()), silentLogger);
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
    open: async (command: string, handlers: ChannelHandlers, signal: AbortSignal) => {
      const target = down ? dead.shell : real.shell;
      const channel: RemoteChannel = await (target.open?.(command, handlers, signal) ??
        Promise.reject(new Error('no open')));
      return {
        write: (text: string) => {
          if (down) {
            // The fault cuts the session off, as a dropped connection would.
            channel.close();
            return;
          }
          for (const line of text.split('\n')) if (WRITES.test(line)) writes++;
          channel.write(text);
        },
        close: () => {
          channel.close();
        },
      };
    },
    hold: () => real.shell.hold?.() ?? (() => undefined),
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
