/**
 * The machine-wide half of the lab: the Debian packages it needs, the users and config files it writes, and the
 * `virtlogd` and `libvirtd` daemons it starts without systemd. Several labs (one per test file, in several
 * processes) share one libvirtd; a lock directory serialises their start and stop, and the last lab to stop kills
 * the daemons a lab started (never ones it found running).
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** Where the lab keeps its shared state: locks, the daemons it started, one directory per running sshd. */
export const LAB_ROOT = '/run/consortium-libvirt-lab';

/** The libvirt connection the lab serves. */
export const LAB_URI = 'qemu:///system';

/** The Debian packages the lab needs (installed by scripts/install-system-deps.sh). */
export const LIBVIRT_LAB_PACKAGES = [
  'libvirt-daemon',
  'libvirt-clients',
  'qemu-system-x86',
  'openssh-server',
] as const;

/** The command that installs them. */
export const LIBVIRT_LAB_INSTALL =
  `apt-get install --no-install-recommends ${LIBVIRT_LAB_PACKAGES.join(' ')}` as const;

/** Binaries the lab runs, with the Debian package that ships each. */
const BINARIES: readonly { readonly path: string; readonly pkg: string }[] = [
  { path: '/usr/sbin/libvirtd', pkg: 'libvirt-daemon' },
  { path: '/usr/sbin/virtlogd', pkg: 'libvirt-daemon' },
  { path: '/usr/bin/virsh', pkg: 'libvirt-clients' },
  { path: '/usr/bin/qemu-system-x86_64', pkg: 'qemu-system-x86' },
  { path: '/usr/sbin/sshd', pkg: 'openssh-server' },
  { path: '/usr/bin/ssh-keygen', pkg: 'openssh-client' },
];

/** The settings libvirtd 9 needs to run QEMU domains as root in a container without systemd or KVM. */
const QEMU_CONF: Readonly<Record<string, string>> = {
  user: '"root"',
  group: '"root"',
  dynamic_ownership: '0',
  security_driver: '"none"',
};

/** The lab's libvirtd.conf: members of group `libvirt` may use the read-write socket without polkit. */
const LIBVIRTD_CONF = `# Written by @consortium/test-libvirt-lab; libvirtd is started with --config pointing here.
unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:${LAB_ROOT}/libvirtd.log"
`;

/** The result of one command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program without a shell; never throws for a non-zero exit, only when it cannot be started. */
export function run(
  file: string,
  args: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, LC_ALL: 'C' },
      },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          if (error.killed) resolve({ code: -1, stdout, stderr: `${stderr}\n(killed: ${error.message})` });
          else reject(new Error(`cannot run ${file}: ${error.message}`, { cause: error }));
          return;
        }
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      },
    );
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}

/** Runs a program and returns its stdout; throws an Error with its stderr when it exits non-zero. */
export async function runChecked(
  file: string,
  args: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(file, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${[file, ...args].join(' ')} exited with ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Throws an Error naming the missing Debian packages, or that the lab needs root. */
export async function checkLabPrerequisites(): Promise<void> {
  const missing: string[] = [];
  for (const binary of BINARIES) {
    if (!(await executable(binary.path))) missing.push(`${binary.path} (${binary.pkg})`);
  }
  if (missing.length > 0) {
    throw new Error(
      `the libvirt lab needs the Debian packages ${LIBVIRT_LAB_PACKAGES.join(', ')}; missing: ${missing.join(', ')}. ` +
        `Install them as root with \`${LIBVIRT_LAB_INSTALL}\` (scripts/install-system-deps.sh does this; ` +
        '`make test` and `.ci/run` call it)',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the libvirt lab must run as root: it starts libvirtd (qemu:///system) and sshd and creates the users ' +
        'consortium-lab and libvirt-qemu',
    );
  }
}

/** True when a process with that pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding the lab's machine-wide lock (a directory; a lock whose owner died is broken). Labs in other
 * processes wait; the lock is held through daemon start-up, which takes ~8 s the very first time.
 */
export async function withLabLock<T>(fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  await mkdir(LAB_ROOT, { recursive: true, mode: 0o755 });
  const lock = join(LAB_ROOT, 'lock');
  const owner = join(lock, 'owner');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(owner, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = await readPid(owner);
      const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      if ((pid !== undefined && !alive(pid)) || (pid === undefined && age > 10_000)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`the libvirt lab lock ${lock} is held by pid ${String(pid)}`);
      await delay(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function ensureGroup(name: string): Promise<void> {
  if ((await run('getent', ['group', name])).code === 0) return;
  const added = await run('groupadd', ['--system', name]);
  if (added.code !== 0 && (await run('getent', ['group', name])).code !== 0) {
    throw new Error(`cannot create group ${name}: ${added.stderr.trim()}`);
  }
}

async function ensureUser(name: string, args: readonly string[]): Promise<void> {
  if ((await run('getent', ['passwd', name])).code === 0) return;
  const added = await run('useradd', [...args, name]);
  if (added.code !== 0 && (await run('getent', ['passwd', name])).code !== 0) {
    throw new Error(`cannot create user ${name}: ${added.stderr.trim()}`);
  }
}

/**
 * Makes the users the lab needs: `libvirt-qemu` (libvirtd looks its default QEMU user up even when qemu.conf says
 * root) and the SSH user, in group `libvirt`, with the password field `*` (no password, but not locked: sshd
 * refuses key logins of accounts locked with `!`).
 */
export async function ensureUsers(sshUser: string): Promise<void> {
  await ensureGroup('libvirt');
  await ensureUser('libvirt-qemu', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin']);
  await ensureUser(sshUser, [
    '--system',
    '--create-home',
    '--home-dir',
    `/var/lib/${sshUser}`,
    '--shell',
    '/bin/sh',
    '--groups',
    'libvirt',
  ]);
  await runChecked('usermod', ['--append', '--groups', 'libvirt', '--password', '*', sshUser]);
}

/**
 * Writes the settings of `QEMU_CONF` into /etc/libvirt/qemu.conf when they are missing (the minimal packages ship
 * no qemu.conf); throws when the file sets one of them to another value, rather than overriding an admin's file.
 */
export async function ensureQemuConf(path = '/etc/libvirt/qemu.conf'): Promise<void> {
  const text = (await exists(path)) ? await readFile(path, 'utf8') : '';
  const missing: string[] = [];
  for (const [key, value] of Object.entries(QEMU_CONF)) {
    const line = new RegExp(`^\\s*${key}\\s*=\\s*(.*?)\\s*$`, 'm').exec(text);
    if (line === null) missing.push(`${key} = ${value}`);
    else if (line[1] !== value) {
      throw new Error(
        `${path} sets ${key} = ${String(line[1])}; the libvirt lab needs ${key} = ${value} (root QEMU in a ` +
          'container without systemd); change it or remove the line',
      );
    }
  }
  if (missing.length === 0) return;
  await mkdir('/etc/libvirt', { recursive: true });
  const block = `\n# Added by @consortium/test-libvirt-lab: QEMU runs as root in a container without systemd.\n${missing.join('\n')}\n`;
  await writeFile(path, text === '' ? block.trimStart() : text.replace(/\n?$/, '\n') + block);
}

/** True when libvirtd answers on the system socket. */
async function libvirtdAnswers(): Promise<boolean> {
  const result = await run('virsh', ['-c', LAB_URI, 'uri'], { timeoutMs: 10_000 });
  return result.code === 0;
}

/** The daemons the lab manages: its pid file, the socket that says it is ready, how to start it. */
const DAEMONS = {
  virtlogd: {
    pidFile: '/run/virtlogd.pid',
    socket: '/run/libvirt/virtlogd-sock',
    args: ['--daemon'],
  },
  libvirtd: {
    pidFile: '/run/libvirtd.pid',
    socket: '/run/libvirt/libvirt-sock',
    args: ['--daemon', '--config', join(LAB_ROOT, 'libvirtd.conf')],
  },
} as const;

type DaemonName = keyof typeof DAEMONS;

/** Where the lab records a daemon it started, so that the last lab stops only what a lab started. */
const startedMarker = (name: DaemonName): string => join(LAB_ROOT, 'daemons', `${name}.pid`);

async function daemonRuns(name: DaemonName): Promise<boolean> {
  const pid = await readPid(DAEMONS[name].pidFile);
  if (pid === undefined || !alive(pid) || !(await exists(DAEMONS[name].socket))) return false;
  return name === 'libvirtd' ? libvirtdAnswers() : true;
}

async function startDaemon(name: DaemonName): Promise<void> {
  if (await daemonRuns(name)) return;
  await mkdir('/var/log/libvirt/qemu', { recursive: true });
  await mkdir(join(LAB_ROOT, 'daemons'), { recursive: true });
  // --daemon returns once the daemon has initialised (or failed to: another one holds its pid file).
  const started = await run(`/usr/sbin/${name}`, DAEMONS[name].args, { timeoutMs: 60_000 });
  const deadline = Date.now() + 30_000;
  while (!(await daemonRuns(name))) {
    if (Date.now() > deadline) {
      const log =
        name === 'libvirtd' ? ` (see ${LAB_ROOT}/libvirtd.log)` : ' (see /var/log/libvirt/virtlogd.log)';
      throw new Error(
        `${name} did not start: exit ${started.code} ${started.stderr.trim() || started.stdout.trim()}${log}`,
      );
    }
    await delay(50);
  }
  const pid = await readPid(DAEMONS[name].pidFile);
  if (started.code === 0 && pid !== undefined) await writeFile(startedMarker(name), String(pid));
}

async function stopDaemon(name: DaemonName): Promise<void> {
  const marker = startedMarker(name);
  const pid = await readPid(marker);
  await rm(marker, { force: true });
  if (pid === undefined || pid !== (await readPid(DAEMONS[name].pidFile)) || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await delay(50);
  }
}

/**
 * Makes sure virtlogd and libvirtd run (starting them when they do not) and that QEMU has been probed, so that the
 * first real call does not take ~8 s. Idempotent; call it holding the lab lock.
 */
export async function ensureDaemons(): Promise<void> {
  await writeFile(join(LAB_ROOT, 'libvirtd.conf'), LIBVIRTD_CONF);
  await startDaemon('virtlogd');
  await startDaemon('libvirtd');
  // The first qemu:///system call that needs QEMU's capabilities probes the binary; libvirt caches the result.
  await runChecked('virsh', ['-c', LAB_URI, 'domcapabilities', '--virttype', 'qemu', '--arch', 'x86_64'], {
    timeoutMs: 120_000,
  });
}

/** Registers a running lab (a file named after it, holding its pid); call it holding the lab lock. */
export async function registerLab(id: string): Promise<void> {
  await mkdir(join(LAB_ROOT, 'labs'), { recursive: true });
  await writeFile(join(LAB_ROOT, 'labs', id), String(process.pid));
}

/**
 * Unregisters a lab; when no lab of a live process remains, stops the daemons a lab started. Call it holding the
 * lab lock.
 */
export async function unregisterLab(id: string): Promise<void> {
  const dir = join(LAB_ROOT, 'labs');
  await rm(join(dir, id), { force: true });
  let remaining = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = await readPid(join(dir, name));
    if (pid !== undefined && alive(pid)) remaining++;
    else await rm(join(dir, name), { force: true });
  }
  if (remaining > 0) return;
  // Each takes about 2 s to shut down on SIGTERM; libvirtd does not need virtlogd to stop.
  await Promise.all([stopDaemon('libvirtd'), stopDaemon('virtlogd')]);
}
