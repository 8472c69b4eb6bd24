/**
 * A cluster of separate hosts on one machine, for the multi-host test: a lab of network namespaces (testkit's
 * `netns.ts`) with etcd and PostgreSQL on a `db` host, NetBox (the test server, relayed into the lab) on a `netbox`
 * host, the web, masters and workers each on a host of its own, and a `client` host the test talks through. Every
 * link is TLS with certificates made here: etcd with client certificates and its own authentication, PostgreSQL
 * with `verify-full` and client-certificate authentication, the web over HTTPS. Each process has its own directory
 * with its own config, copies of the certificates and password file; no two share a file.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { checkServerIdentity } from 'node:tls';
import { join } from 'node:path';
import type { Store } from '@consortium/core';
import { openPostgresStore } from '@consortium/store-postgres';
import type { NetboxServer } from '@consortium/test-netbox-server';
import { startNetboxServer } from '@consortium/test-netbox-server';
import type { CertificateAuthority, EtcdHarness, Lab, LabHost, PostgresHarness } from '@consortium/testkit';
import { makeCertificateAuthority, startEtcd, startLab, startPostgres } from '@consortium/testkit';
import { BINARY } from './dev-server.js';

/** The roles a process of the cluster has. */
export type HostRole = 'web' | 'master' | 'worker';

/** One `consortium` process on a host of its own. */
export interface HostProcess {
  readonly name: string;
  readonly role: HostRole;
  readonly host: LabHost;
  readonly child: ChildProcess;
  /** Everything it wrote on stderr (JSON log lines, or its one-line refusal). */
  log(): string;
  /** What it printed on stdout (its `url:` line). */
  out(): string;
  /** Parsed log lines whose message is `message`. */
  lines(message: string): Record<string, unknown>[];
  /** Resolves with the exit code (or signal) once it exits. */
  readonly exited: Promise<number | string>;
}

/** How a process's files differ from a correct one's, for the refusal checks. */
export interface Misconfiguration {
  /** Trust this CA's certificate instead of the lab's for etcd. */
  readonly etcdCa?: string;
  /** Leave out the etcd client certificate. */
  readonly noEtcdClientCert?: boolean;
  /** Trust this CA's certificate instead of the lab's for PostgreSQL. */
  readonly storeCa?: string;
  /** Leave out the PostgreSQL client certificate. */
  readonly noStoreClientCert?: boolean;
}

/** A response of the API. */
export interface ApiResponse {
  readonly status: number;
  readonly body: any;
}

/** The running cluster. */
export interface MultiHostCluster {
  readonly lab: Lab;
  readonly ca: CertificateAuthority;
  /** A CA nobody in the cluster trusts. */
  readonly stranger: CertificateAuthority;
  readonly etcd: EtcdHarness;
  readonly postgres: PostgresHarness;
  readonly netbox: NetboxServer;
  readonly hosts: Readonly<Record<string, LabHost>>;
  readonly processes: HostProcess[];
  readonly leaseTtlSeconds: number;
  /** Starts `role` on host `hostName` (made on first use) and waits for its `url:` line. */
  start(role: HostRole, name: string): Promise<HostProcess>;
  /** Starts `role` with broken TLS files; resolves once it exits, with its exit code and stderr. */
  refused(
    role: HostRole,
    name: string,
    wrong: Misconfiguration,
  ): Promise<{ code: number | string; stderr: string }>;
  /** Calls the API through the client host, over HTTPS, trusting only the lab's CA. */
  api(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** The store, opened from the test through the client host (verify-full, client certificate). */
  store(): Promise<Store>;
  /** The master leading now. */
  leader(): Promise<HostProcess>;
  /** Kills everything and removes the lab (namespaces, links, files). */
  stop(): Promise<void>;
}

const ETCD_PASSWORD = 'etcd-consortium-secret';
const PREFIX = '/consortium/mh/';

/** Starts etcd, PostgreSQL and NetBox in the lab and prepares the web's token; processes are started by the test. */
export async function startMultiHostCluster(options: { leaseTtlSeconds: number }): Promise<MultiHostCluster> {
  const lab = await startLab();
  const parts: { stop(): Promise<void> }[] = [];
  const processes: HostProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const proc of processes) proc.child.kill('SIGKILL');
    for (const part of parts.reverse()) await part.stop().catch(() => undefined);
    await lab.remove();
  };
  try {
    const hosts: Record<string, LabHost> = {};
    const host = async (name: string): Promise<LabHost> => (hosts[name] ??= await lab.addHost(name));
    const db = await host('db');
    const client = await host('client');
    const netboxHost = await host('netbox');
    const web = await host('web');
    const certs = join(lab.dir, 'certs');
    mkdirSync(certs);
    const ca = await makeCertificateAuthority('consortium-lab-ca', certs);
    const stranger = await makeCertificateAuthority('stranger-ca', certs);
    const dbCert = await ca.server('db', { ips: [db.address] });
    const webCert = await ca.server('web', { ips: [web.address] });
    const consortiumClient = await ca.client('consortium');
    const etcd = await startEtcd({
      netns: db.netns,
      host: db.address,
      tls: { ca: ca.cert, ...dbCert, client: await ca.client('root') },
      auth: {
        rootPassword: 'etcd-root-secret',
        users: [{ name: 'consortium', password: ETCD_PASSWORD, prefix: PREFIX }],
      },
    });
    parts.push(etcd);
    const postgres = await startPostgres({
      netns: db.netns,
      host: db.address,
      ssl: { ca: ca.cert, ...dbCert },
      hba: [`hostssl all consortium ${lab.network} cert`],
    });
    parts.push(postgres);
    await postgres.query('CREATE ROLE consortium LOGIN');
    await postgres.query('CREATE DATABASE consortium OWNER consortium');
    const netbox = await startNetboxServer();
    parts.push(netbox);
    netbox.seed({ sites: [{ name: 'Peking 1', slug: 'pek1' }] });
    await lab.exposeToLab(netboxHost, 8000, Number(new URL(netbox.url).port));

    /** Writes the directory of process `name`: its config and its own copies of what it needs. */
    const prepare = (
      name: string,
      role: HostRole | 'token',
      own: LabHost,
      wrong: Misconfiguration = {},
    ): string => {
      const dir = join(lab.dir, 'hosts', name);
      mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
      const copy = (from: string, to: string): string => {
        copyFileSync(from, join(dir, to));
        return join(dir, to);
      };
      const clientFiles = (skip: boolean): { cert?: string; key?: string } =>
        skip
          ? {}
          : {
              cert: copy(consortiumClient.cert, 'client.crt'),
              key: copy(consortiumClient.key, 'client.key'),
            };
      writeFileSync(join(dir, 'etcd-password'), `${ETCD_PASSWORD}\n`, { mode: 0o600 });
      const config = {
        cluster: 'mh',
        dataDir: join(dir, 'data'),
        web: {
          host: own.address,
          ...(role === 'web'
            ? { tls: { cert: copy(webCert.cert, 'web.crt'), key: copy(webCert.key, 'web.key') } }
            : {}),
        },
        store: {
          driver: 'postgres',
          url: `postgres://consortium@${db.address}:5432/consortium`,
          tls: {
            ca: copy(wrong.storeCa ?? ca.cert, 'store-ca.crt'),
            ...clientFiles(wrong.noStoreClientCert === true),
          },
          poolSize: 4,
          statementTimeoutMs: 10_000,
        },
        coordinator: {
          driver: 'etcd',
          endpoints: [`https://${db.address}:2379`],
          prefix: PREFIX,
          leaseTtlSeconds: options.leaseTtlSeconds,
          tls: {
            ca: copy(wrong.etcdCa ?? ca.cert, 'etcd-ca.crt'),
            ...clientFiles(wrong.noEtcdClientCert === true),
          },
          auth: { username: 'consortium', passwordFile: join(dir, 'etcd-password') },
        },
        worker: { concurrency: 4 },
        observe: { intervalSeconds: 0 },
        log: { level: 'info', format: 'json' },
        planner: { ttlSeconds: 300 },
        plugins: [
          { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
          { module: '@consortium/plugin-ipam' },
          {
            module: '@consortium/plugin-netbox',
            config: { url: `http://${netboxHost.address}:8000`, token: netbox.token, timeoutMs: 30_000 },
          },
        ],
      };
      const file = join(dir, 'consortium.yaml');
      writeFileSync(file, JSON.stringify(config, null, 2));
      return file;
    };

    // Nothing of the test's own environment leaks into the processes' configuration.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('CONSORTIUM_')),
    );

    const token = (
      await lab.run(web, process.execPath, [
        BINARY,
        'token',
        'create',
        '--role',
        'admin',
        '--config',
        prepare('token', 'token', web),
      ])
    ).trim();

    const spawnRole = (role: HostRole, name: string, own: LabHost, wrong?: Misconfiguration): HostProcess => {
      const config = prepare(name, role, own, wrong);
      const port = role === 'web' ? 8443 : 9100;
      const child = lab.spawn(
        own,
        process.execPath,
        [BINARY, role, '--config', config, '--port', String(port)],
        {
          cwd: join(lab.dir, 'hosts', name),
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      let stdout = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | string>((resolve) => {
        child.once('exit', (code, signal) => {
          resolve(code ?? signal ?? 'unknown');
        });
      });
      const proc: HostProcess = {
        name,
        role,
        host: own,
        child,
        exited,
        log: () => stderr,
        out: () => stdout,
        lines: (message) =>
          stderr
            .split('\n')
            .filter((line) => line.startsWith('{'))
            .map((line) => JSON.parse(line) as Record<string, unknown>)
            .filter((line) => line['message'] === message),
      };
      processes.push(proc);
      return proc;
    };

    const agent = new Agent({
      keepAlive: true,
      ca: readFileSync(ca.cert),
      // The relay's loopback port stands for the web's address; the certificate must name that address.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(web.address, cert),
    });
    parts.push({
      stop: () => {
        agent.destroy();
        return Promise.resolve();
      },
    });
    const webPort = await lab.exposeToTest(client, web.address, 8443);
    const pgPort = await lab.exposeToTest(client, db.address, 5432);
    let store: Store | undefined;
    parts.push({ stop: async () => store?.close() });

    return {
      lab,
      ca,
      stranger,
      etcd,
      postgres,
      netbox,
      hosts,
      processes,
      leaseTtlSeconds: options.leaseTtlSeconds,
      start: async (role, name) => {
        const proc = spawnRole(role, name, await host(name));
        const deadline = Date.now() + 150_000;
        while (!/^url: /m.test(proc.out())) {
          if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
            throw new Error(`${name} exited during start-up: ${proc.log()}`);
          }
          if (Date.now() > deadline) throw new Error(`${name} printed no url within 150 s: ${proc.log()}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return proc;
      },
      refused: async (role, name, wrong) => {
        const proc = spawnRole(role, name, await host(name), wrong);
        const code = await proc.exited;
        return { code, stderr: proc.log() };
      },
      api: (method, path, body) =>
        new Promise((resolve, reject) => {
          const text = body === undefined ? undefined : JSON.stringify(body);
          const req = request(
            {
              host: '127.0.0.1',
              port: webPort.port,
              method,
              path,
              agent,
              headers: {
                authorization: `Bearer ${token}`,
                ...(text === undefined ? {} : { 'content-type': 'application/json' }),
              },
            },
            (response) => {
              let data = '';
              response.setEncoding('utf8');
              response.on('data', (chunk: string) => (data += chunk));
              response.on('end', () => {
                let parsed: unknown = data;
                try {
                  parsed = data === '' ? undefined : JSON.parse(data);
                } catch {
                  // not JSON: keep the text
                }
                resolve({ status: response.statusCode ?? 0, body: parsed });
              });
              response.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(text);
        }),
      store: async () =>
        (store ??= await openPostgresStore({
          url: `postgres://consortium@127.0.0.1:${pgPort.port}/consortium`,
          ssl: {
            ca: readFileSync(ca.cert, 'utf8'),
            cert: readFileSync(consortiumClient.cert, 'utf8'),
            key: readFileSync(consortiumClient.key, 'utf8'),
            checkServerIdentity: (_host: string, cert: PeerCertificate) =>
              checkServerIdentity(db.address, cert),
          },
          poolSize: 2,
          runMigrations: false,
        })),
      leader: async () => {
        for (let i = 0; i < 600; i++) {
          let best: { proc: HostProcess; at: string } | undefined;
          for (const proc of processes.filter(
            (p) => p.role === 'master' && p.child.exitCode === null && p.child.signalCode === null,
          )) {
            const acquired = proc.lines('leadership acquired').at(-1);
            const lost = proc.lines('leadership lost; campaigning again').at(-1);
            const at = acquired?.['timestamp'] as string | undefined;
            if (at === undefined || (lost !== undefined && String(lost['timestamp']) > at)) continue;
            if (best === undefined || at > best.at) best = { proc, at };
          }
          if (best !== undefined) return best.proc;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error('no master leads');
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
