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
import type { ProcessOutput } from './processes.js';
import { captureOutput, clusterPlugins, leadingMaster } from './processes.js';

/** The roles a process of the cluster has. */
export type HostRole = 'web' | 'master' | 'worker';

/** One `consortium` process on a host of its own. */
export interface HostProcess extends ProcessOutput {
  readonly name: string;
  readonly role: HostRole;
  readonly host: LabHost;
  readonly child: ChildProcess;
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

    const files: ProcessFiles = {
      lab,
      db,
      netboxUrl: `http://${netboxHost.address}:8000`,
      netboxToken: netbox.token,
      ca: ca.cert,
      webCert,
      client: consortiumClient,
      leaseTtlSeconds: options.leaseTtlSeconds,
    };
    const prepare = (
      name: string,
      role: HostRole | 'token',
      own: LabHost,
      wrong: Misconfiguration = {},
    ): string => writeProcessFiles(files, name, role, own, wrong);

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
      const proc = spawnHostProcess(lab, own, role, name, prepare(name, role, own, wrong), env);
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
      start: async (role, name) => startedUp(spawnRole(role, name, await host(name)), 150),
      refused: async (role, name, wrong) => {
        const proc = spawnRole(role, name, await host(name), wrong);
        const code = await proc.exited;
        return { code, stderr: proc.log() };
      },
      api: httpsApi(agent, webPort.port, token),
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
      leader: () => leadingMaster(processes, 30),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Calls the API at 127.0.0.1:`port` over HTTPS through `agent` with the bearer `token`; the body parsed if JSON. */
function httpsApi(
  agent: Agent,
  port: number,
  token: string,
): (method: string, path: string, body?: unknown) => Promise<ApiResponse> {
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port,
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
    });
}

/** What the processes' files are made from. */
interface ProcessFiles {
  readonly lab: Lab;
  readonly db: LabHost;
  readonly netboxUrl: string;
  readonly netboxToken: string;
  /** The lab CA's certificate. */
  readonly ca: string;
  readonly webCert: { readonly cert: string; readonly key: string };
  readonly client: { readonly cert: string; readonly key: string };
  readonly leaseTtlSeconds: number;
}

/** Writes the directory of process `name`: its config and its own copies of what it needs; returns the config. */
function writeProcessFiles(
  files: ProcessFiles,
  name: string,
  role: HostRole | 'token',
  own: LabHost,
  wrong: Misconfiguration,
): string {
  const dir = join(files.lab.dir, 'hosts', name);
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const copy = (from: string, to: string): string => {
    copyFileSync(from, join(dir, to));
    return join(dir, to);
  };
  const clientFiles = (skip: boolean): { cert?: string; key?: string } =>
    skip
      ? {}
      : {
          cert: copy(files.client.cert, 'client.crt'),
          key: copy(files.client.key, 'client.key'),
        };
  writeFileSync(join(dir, 'etcd-password'), `${ETCD_PASSWORD}\n`, { mode: 0o600 });
  const config = {
    cluster: 'mh',
    dataDir: join(dir, 'data'),
    web: {
      host: own.address,
      ...(role === 'web'
        ? { tls: { cert: copy(files.webCert.cert, 'web.crt'), key: copy(files.webCert.key, 'web.key') } }
        : {}),
    },
    store: {
      driver: 'postgres',
      url: `postgres://consortium@${files.db.address}:5432/consortium`,
      tls: {
        ca: copy(wrong.storeCa ?? files.ca, 'store-ca.crt'),
        ...clientFiles(wrong.noStoreClientCert === true),
      },
      poolSize: 4,
      statementTimeoutMs: 10_000,
    },
    coordinator: {
      driver: 'etcd',
      endpoints: [`https://${files.db.address}:2379`],
      prefix: PREFIX,
      leaseTtlSeconds: files.leaseTtlSeconds,
      tls: {
        ca: copy(wrong.etcdCa ?? files.ca, 'etcd-ca.crt'),
        ...clientFiles(wrong.noEtcdClientCert === true),
      },
      auth: { username: 'consortium', passwordFile: join(dir, 'etcd-password') },
    },
    worker: { concurrency: 4 },
    observe: { intervalSeconds: 0 },
    log: { level: 'info', format: 'json' },
    planner: { ttlSeconds: 300 },
    plugins: clusterPlugins(files.netboxUrl, files.netboxToken),
  };
  const file = join(dir, 'consortium.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Runs `consortium <role>` with `config` on host `own`, its output captured. */
function spawnHostProcess(
  lab: Lab,
  own: LabHost,
  role: HostRole,
  name: string,
  config: string,
  env: NodeJS.ProcessEnv,
): HostProcess {
  const port = role === 'web' ? 8443 : 9100;
  const child = lab.spawn(own, process.execPath, [BINARY, role, '--config', config, '--port', String(port)], {
    cwd: join(lab.dir, 'hosts', name),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return { name, role, host: own, child, exited, ...captureOutput(child) };
}

/** Waits until `proc` prints its `url:` line; throws when it exits first or prints none within `seconds`. */
async function startedUp(proc: HostProcess, seconds: number): Promise<HostProcess> {
  const deadline = Date.now() + seconds * 1000;
  while (!/^url: /m.test(proc.out())) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited during start-up: ${proc.log()}`);
    }
    if (Date.now() > deadline)
      throw new Error(`${proc.name} printed no url within ${seconds} s: ${proc.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return proc;
}
