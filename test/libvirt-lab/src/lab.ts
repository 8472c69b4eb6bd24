/**
 * `startLibvirtLab`: real libvirtd (qemu:///system, TCG) reached over a real sshd on loopback with a key-only user,
 * for the libvirt plugin's tests (DESIGN.md §9). Each lab has its own sshd, port, host key and client key; the
 * daemons are shared by every lab on the machine (see system.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'ssh2';
import type { CommandResult } from './system.js';
import {
  alive,
  checkLabPrerequisites,
  ensureDaemons,
  ensureQemuConf,
  ensureUsers,
  LAB_ROOT,
  LAB_URI,
  registerLab,
  run,
  runChecked,
  unregisterLab,
  withLabLock,
} from './system.js';

/** Options of `startLibvirtLab`. */
export interface LibvirtLabOptions {
  /** The SSH user (created when missing, in group `libvirt`); default `consortium-lab`. */
  readonly user?: string;
}

/** One domain event libvirtd sent (`virsh event --all`): a write to a domain, never a read. */
export interface LabDomainEvent {
  readonly domain: string;
  /** The event as virsh prints it: `event 'lifecycle' for domain 'web-09': Defined Updated`. */
  readonly line: string;
}

/**
 * Every domain event of the shared libvirtd from the moment `watchDomainEvents` resolved: each define, undefine,
 * start, stop or metadata change of any domain, by anyone (the lab's virsh, a provider over SSH, another test).
 */
export interface LabDomainEvents {
  /** The events so far, in the order libvirtd sent them. */
  readonly events: readonly LabDomainEvent[];
  /** The events about one domain so far. */
  of(domain: string): LabDomainEvent[];
  /**
   * Resolves once every event of a change made before the call has arrived: it redefines its own sentinel domain
   * and waits for that event, which libvirtd sends after all earlier ones.
   */
  settle(): Promise<void>;
  /** Stops listening and undefines the sentinel. Idempotent. */
  stop(): Promise<void>;
}

/** A running lab. */
export interface LibvirtLab {
  /** Where sshd listens: always 127.0.0.1. */
  readonly host: string;
  readonly port: number;
  /** The SSH user; it may run `virsh -c qemu:///system` through the libvirt socket's group. */
  readonly user: string;
  /** The client's private key, OpenSSH PEM format (ed25519). */
  readonly privateKey: string;
  /** The client's public key, an OpenSSH `authorized_keys` line. */
  readonly publicKey: string;
  /** The server's host key, an OpenSSH public key line (`ssh-ed25519 AAAA...`), for host key verification. */
  readonly hostKey: string;
  /** The server's host key fingerprint as `ssh-keygen -l` prints it (`SHA256:...`). */
  readonly hostKeyFingerprint: string;
  /** The libvirt URI the lab serves: `qemu:///system`. */
  readonly uri: string;
  /** Runs `virsh -c qemu:///system <args>` locally (as root); returns stdout, throws with stderr on failure. */
  virsh(args: readonly string[], options?: { readonly stdin?: string }): Promise<string>;
  /** Like `virsh`, but returns the exit code, stdout and stderr instead of throwing. */
  tryVirsh(args: readonly string[], options?: { readonly stdin?: string }): Promise<CommandResult>;
  /** Destroys and undefines a domain if it exists (test clean-up). */
  removeDomain(name: string): Promise<void>;
  /** Names of all defined domains. */
  domains(): Promise<string[]>;
  /** Starts counting the domain events of the lab's libvirtd (its writes); resolves once it is listening. */
  watchDomainEvents(): Promise<LabDomainEvents>;
  /** Kills this lab's sshd; the last lab on the machine also stops the daemons a lab started. Idempotent. */
  stop(): Promise<void>;
}

/** sshd processes of this process, killed when it exits so that none outlives a test run. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
let labCount = 0;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Resolves once something on the port sends an SSH banner; false after `timeoutMs`. */
async function sshBanner(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const done = (value: boolean): void => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(1_000, () => {
        done(false);
      });
      socket.once('data', (data) => {
        done(data.toString('latin1').startsWith('SSH-'));
      });
      socket.once('error', () => {
        done(false);
      });
    });
    if (ok) return true;
    await delay(25);
  }
  return false;
}

/** Kills the sshd of labs whose process died without `stop()` and removes their directories. */
async function pruneDeadLabs(): Promise<void> {
  const dir = join(LAB_ROOT, 'ssh');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const owner = Number.parseInt(await readFile(join(dir, name, 'owner'), 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && alive(owner)) continue;
    const sshd = Number.parseInt(await readFile(join(dir, name, 'sshd.pid'), 'utf8').catch(() => ''), 10);
    if (Number.isInteger(sshd) && alive(sshd)) process.kill(sshd, 'SIGKILL');
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

function sshdConfig(dir: string, port: number, user: string): string {
  return `# Written by @consortium/test-libvirt-lab: key-only logins of one user on loopback.
Port ${port}
ListenAddress 127.0.0.1
HostKey ${dir}/host_ed25519_key
PidFile ${dir}/sshd.pid
AuthorizedKeysFile ${dir}/authorized_keys
AllowUsers ${user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxSessions 32
LogLevel VERBOSE
`;
}

/** Runs one command over SSH with the lab's key; used to check that the whole chain works before returning. */
function sshExec(
  options: { port: number; user: string; privateKey: string; hostKey: string },
  command: string,
): Promise<CommandResult> {
  const expected = Buffer.from(options.hostKey.split(' ')[1] ?? '', 'base64');
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('error', reject);
    client.once('ready', () => {
      client.exec(command, (error, stream) => {
        if (error !== undefined) {
          client.end();
          reject(error);
          return;
        }
        let stdout = '';
        let stderr = '';
        stream.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
        stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        stream.on('close', (code: number | null) => {
          client.end();
          resolve({ code: code ?? -1, stdout, stderr });
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

async function startSshd(
  dir: string,
  user: string,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  let lastOutput = '';
  // sshd's privilege separation directory; the packaged service creates it, a bare `sshd -D` does not.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    await writeFile(join(dir, 'sshd_config'), sshdConfig(dir, port, user), { mode: 0o644 });
    // sshd re-executes itself and therefore needs an absolute path; -D stays in the foreground, -e logs to stderr.
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    running.add(child);
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    });
    child.once('exit', () => {
      running.delete(child);
    });
    const ready = await Promise.race([
      sshBanner(port, 10_000),
      new Promise<false>((resolve) => {
        child.once('exit', () => {
          resolve(false);
        });
      }),
    ]);
    if (ready && child.exitCode === null) return { child, port, output: () => output };
    child.kill('SIGKILL');
    lastOutput = output;
  }
  throw new Error(`sshd did not start: ${lastOutput.trim()}`);
}

async function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A domain never started, only redefined to mark a point in the event stream; its name is no node name. */
function sentinelXml(name: string, uuid: string): string {
  // With its uuid, so that defining it again updates it instead of clashing with itself.
  return `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>16</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os></domain>`;
}

/** `virsh event --all --loop` as root on the lab's libvirtd, with a sentinel domain to settle on. */
async function watchDomainEvents(
  id: string,
  virsh: (args: readonly string[]) => Promise<string>,
  tryVirsh: (args: readonly string[]) => Promise<CommandResult>,
): Promise<LabDomainEvents> {
  const sentinel = `Lab_Events_${id.replace(/-/g, '_')}_${randomBytes(3).toString('hex')}`;
  const sentinelFile = join(LAB_ROOT, `${sentinel}.xml`);
  await writeFile(sentinelFile, sentinelXml(sentinel, randomUUID()));
  const child = spawn('virsh', ['-c', LAB_URI, 'event', '--all', '--loop'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const events: LabDomainEvent[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const domain = /for domain '([^']*)'/.exec(line)?.[1];
      if (domain !== undefined) events.push({ domain, line: line.trim() });
    }
    for (const waiter of waiters) waiter();
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const ended = new Promise<never>((_, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`virsh event ended (exit ${String(code)}): ${stderr.trim()}`));
    });
  });
  ended.catch(() => undefined);
  const sentinelEvents = (): number => events.filter((e) => e.domain === sentinel).length;
  /** Redefines the sentinel and waits for its event; false if none came within `ms` (the stream not yet registered). */
  const mark = async (ms: number): Promise<boolean> => {
    const seen = sentinelEvents();
    let check = (): void => undefined;
    const arrived = new Promise<boolean>((resolve) => {
      check = () => {
        if (sentinelEvents() > seen) resolve(true);
      };
      waiters.add(check);
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      // A file, not /dev/stdin: Node's stdin pipe is a socket, which virsh cannot open by that name.
      await virsh(['define', sentinelFile]);
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(false);
        }, ms);
      });
      return await Promise.race([arrived, ended, late]);
    } finally {
      clearTimeout(timer);
      waiters.delete(check);
    }
  };
  // libvirtd gives no sign that the stream is registered but the events it sends: mark until one comes back.
  const deadline = Date.now() + 30_000;
  while (!(await mark(250))) {
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`virsh event sent nothing within 30 s: ${stderr.trim()}`);
    }
  }
  const settle = async (): Promise<void> => {
    if (!(await mark(60_000))) throw new Error('the sentinel domain event did not come back within 60 s');
  };
  let stopped: Promise<void> | undefined;
  return {
    get events() {
      return events.filter((e) => e.domain !== sentinel);
    },
    of: (domain) => events.filter((e) => e.domain === domain),
    settle,
    stop: () =>
      (stopped ??= (async () => {
        child.kill('SIGTERM');
        await tryVirsh(['undefine', sentinel]);
        await rm(sentinelFile, { force: true });
      })()),
  };
}

/**
 * Starts a lab: checks the Debian packages (throws an Error naming the ones to `apt-get install`), makes the users
 * and config, starts virtlogd and libvirtd when they do not run (and warms QEMU's capability probe up), then an
 * sshd on a free loopback port with a fresh host key and client key, and checks that the user can run virsh over
 * SSH. Needs root.
 */
export async function startLibvirtLab(options: LibvirtLabOptions = {}): Promise<LibvirtLab> {
  await checkLabPrerequisites();
  installExitHook();
  const user = options.user ?? 'consortium-lab';
  const id = `${process.pid}-${++labCount}-${randomBytes(3).toString('hex')}`;
  await withLabLock(async () => {
    await pruneDeadLabs();
    await ensureUsers(user);
    await ensureQemuConf();
    await registerLab(id);
    try {
      await ensureDaemons();
    } catch (error) {
      await unregisterLab(id);
      throw error;
    }
  });

  const dir = join(LAB_ROOT, 'ssh', id);
  let sshd: ChildProcess | undefined;
  const cleanUp = async (): Promise<void> => {
    if (sshd !== undefined) await waitForExit(sshd);
    await rm(dir, { recursive: true, force: true });
    await withLabLock(() => unregisterLab(id));
  };
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // StrictModes: every directory up to / must be owned by root and not writable by group or others.
    await chmod(join(LAB_ROOT, 'ssh'), 0o755);
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'owner'), String(process.pid));
    const keygen = (file: string, comment: string): Promise<string> =>
      runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(dir, file)]);
    await Promise.all([
      keygen('host_ed25519_key', 'consortium-lab-host'),
      keygen('client_key', 'consortium-lab'),
    ]);
    const privateKey = await readFile(join(dir, 'client_key'), 'utf8');
    const publicKey = (await readFile(join(dir, 'client_key.pub'), 'utf8')).trim();
    const hostKey = (await readFile(join(dir, 'host_ed25519_key.pub'), 'utf8')).trim();
    await writeFile(join(dir, 'authorized_keys'), `${publicKey}\n`, { mode: 0o644 });
    const hostKeyFingerprint = `SHA256:${createHash('sha256')
      .update(Buffer.from(hostKey.split(' ')[1] ?? '', 'base64'))
      .digest('base64')
      .replace(/=+$/, '')}`;

    const started = await startSshd(dir, user);
    sshd = started.child;
    const check = await sshExec(
      { port: started.port, user, privateKey, hostKey },
      `virsh -c ${LAB_URI} uri`,
    ).catch((error: unknown) => {
      throw new Error(
        `the lab user ${user} cannot log in over SSH: ${(error as Error).message}; sshd said: ${started.output().trim()}`,
      );
    });
    if (check.code !== 0 || check.stdout.trim() !== LAB_URI) {
      throw new Error(
        `the lab user ${user} cannot run virsh -c ${LAB_URI} over SSH (exit ${check.code}): ${check.stderr.trim()}; ` +
          'a libvirtd that the lab did not start must let group libvirt use its read-write socket ' +
          '(unix_sock_group = "libvirt", unix_sock_rw_perms = "0770", auth_unix_rw = "none")',
      );
    }

    const tryVirsh = (
      args: readonly string[],
      opts: { readonly stdin?: string } = {},
    ): Promise<CommandResult> => run('virsh', ['-c', LAB_URI, ...args], opts);
    const virsh = (args: readonly string[], opts: { readonly stdin?: string } = {}): Promise<string> =>
      runChecked('virsh', ['-c', LAB_URI, ...args], opts);
    let stopped: Promise<void> | undefined;
    return {
      host: '127.0.0.1',
      port: started.port,
      user,
      privateKey,
      publicKey,
      hostKey,
      hostKeyFingerprint,
      uri: LAB_URI,
      virsh,
      tryVirsh,
      removeDomain: async (name) => {
        await tryVirsh(['destroy', name]);
        const result = await tryVirsh(['undefine', name]);
        if (result.code !== 0 && !result.stderr.includes('failed to get domain')) {
          throw new Error(`cannot undefine ${name}: ${result.stderr.trim()}`);
        }
      },
      domains: async () =>
        (await virsh(['list', '--all', '--name']))
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== ''),
      watchDomainEvents: () => watchDomainEvents(id, virsh, tryVirsh),
      stop: () => (stopped ??= cleanUp()),
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
