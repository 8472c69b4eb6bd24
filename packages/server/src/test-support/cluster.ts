/**
 * A real cluster for tests: etcd from the harness, a NetBox test server as the shared (and slowable) backend, and
 * `consortium web|master|worker` as separate processes of the real binary sharing one SQLite file.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '@consortium/core';
import { openSqliteStore } from '@consortium/store-sqlite';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import type { EtcdHarness } from '@consortium/testkit';
import { startEtcd } from '@consortium/testkit';
import type { Api } from './dev-server.js';
import { BINARY, apiClient, tempDir } from './dev-server.js';
import { captureOutput, clusterPlugins, leadingMaster } from './processes.js';

/** One process of the cluster. */
export interface ClusterProcess {
  readonly role: 'web' | 'master' | 'worker';
  readonly name: string;
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything it logged so far (JSON lines on stderr). */
  log(): string;
  /** What it printed on stdout (its `url:` line). */
  out(): string;
  /** Its URL: the API of a web process, /metrics of the others. */
  url(): string;
  /** Parsed log lines whose message is `message`. */
  lines(message: string): Record<string, unknown>[];
}

/** A running cluster. */
export interface Cluster {
  readonly etcd: EtcdHarness;
  readonly netbox: NetboxServer;
  readonly api: Api;
  readonly processes: ClusterProcess[];
  /** Opens the shared store (for reading events and jobs directly). */
  store(): Promise<Store>;
  spawn(
    role: 'web' | 'master' | 'worker',
    name: string,
    env?: Record<string, string>,
  ): Promise<ClusterProcess>;
  /** The master that holds the leadership now (its latest `leadership acquired` after any other's). */
  leader(): Promise<ClusterProcess>;
  stop(): Promise<void>;
}

/** Starts etcd, NetBox and a web process; masters and workers are spawned by the test. */
export async function startCluster(
  options: { leaseTtlSeconds?: number; workerConcurrency?: number } = {},
): Promise<Cluster> {
  const data = tempDir('consortium-cluster-');
  const etcd = await startEtcd();
  const netbox = await startNetboxServer();
  netbox.seed({ sites: [{ name: 'Peking 1', slug: 'pek1' }] });
  const configFile = join(data.dir, 'cluster.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      cluster: 'test',
      dataDir: data.dir,
      coordinator: {
        driver: 'etcd',
        endpoints: [etcd.endpoint],
        prefix: `/t-${process.pid}-${Date.now()}/`,
        leaseTtlSeconds: options.leaseTtlSeconds ?? 3,
      },
      worker: { concurrency: options.workerConcurrency ?? 4 },
      observe: { intervalSeconds: 0 },
      log: { level: 'info', format: 'json' },
      planner: { ttlSeconds: 300 },
      plugins: clusterPlugins(netbox.url, netbox.token),
    }),
  );
  const made = spawnSync(
    process.execPath,
    [BINARY, 'token', 'create', '--role', 'admin', '--config', configFile],
    {
      encoding: 'utf8',
    },
  );
  if (made.status !== 0) throw new Error(`token create failed: ${made.stderr}`);
  const token = made.stdout.trim();
  const processes: ClusterProcess[] = [];

  const spawnRole = async (
    role: ClusterProcess['role'],
    name: string,
    env: Record<string, string> = {},
  ): Promise<ClusterProcess> => {
    // Every role gets a port: the API for web, /healthz and /metrics for master and worker.
    const args = [BINARY, role, '--config', configFile, '--port', '0'];
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env } });
    const output = captureOutput(child);
    const proc: ClusterProcess = {
      role,
      name,
      child,
      ...output,
      url: () => /^url: (\S+)$/m.exec(output.out())?.[1] ?? '',
    };
    processes.push(proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/^url: /m.test(output.out())) {
          clearInterval(timer);
          resolve();
        }
      }, 20);
      child.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`${name} exited ${String(code)}: ${output.log()}`));
      });
    });
    return proc;
  };
  const web = await spawnRole('web', 'web');
  const webUrl = /^url: (\S+)$/m.exec(web.out())?.[1];
  if (webUrl === undefined) throw new Error(`web printed no url: ${web.log()}`);
  let store: Store | undefined;
  return {
    etcd,
    netbox,
    api: apiClient(webUrl, token),
    processes,
    spawn: spawnRole,
    store: async () => (store ??= await openSqliteStore({ path: join(data.dir, 'consortium.db') })),
    leader: () => leadingMaster(processes, 15),
    async stop() {
      for (const proc of processes) {
        if (proc.child.exitCode === null && proc.child.signalCode === null) {
          proc.child.kill('SIGCONT');
          proc.child.kill('SIGKILL');
        }
      }
      await store?.close();
      await netbox.stop();
      await etcd.stop();
      data.remove();
    },
  };
}
