/**
 * A cluster of separate hosts: network namespaces on this machine (etcd and PostgreSQL on one host, the web on a
 * second, two masters and two workers on hosts of their own, the test on a client host), each process with its own
 * directory and files, TLS on every link. Through the web's address it makes a subnet and 50 hosts while the leading
 * master is killed, a worker's cable is pulled for twice the lease TTL and PostgreSQL restarts; then every job has
 * ended exactly once and every host holds one address nobody else holds. Processes with a wrong CA or without a
 * client certificate are refused in one line. Needs root and `ip netns`; skipped, saying why, without them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labUnavailable } from '@consortium/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostProcess, MultiHostCluster } from './test-support/multihost.js';
import { startMultiHostCluster } from './test-support/multihost.js';

const unavailable = await labUnavailable();
if (unavailable !== undefined) console.warn(`multi-host cluster test skipped: ${unavailable}`);

const TERMINAL = ['succeeded', 'failed', 'expired', 'cancelled'];
const HOSTS = 50;

let cluster: MultiHostCluster | undefined;
afterEach(async (context) => {
  // A failed run leaves every process's log under .ci/out/multihost/ and their tails on stderr, for CI to show.
  if (context.task.result?.state === 'fail' && cluster !== undefined) {
    const dir = join('.ci', 'out', 'multihost');
    mkdirSync(dir, { recursive: true });
    for (const p of cluster.processes) {
      writeFileSync(join(dir, `${p.name}.log`), `${p.log()}\n--- stdout\n${p.out()}`);
      console.error(
        `--- ${p.name} (last 20 lines; whole log in ${dir})\n${p.log().split('\n').slice(-20).join('\n')}`,
      );
    }
  }
  await cluster?.stop();
  cluster = undefined;
}, 60_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, check: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Calls the API, retrying while the web answers 503 or cannot be reached (PostgreSQL restarting). */
async function call(c: MultiHostCluster, method: string, path: string, body?: unknown): Promise<any> {
  return until(
    `${method} ${path}`,
    async () => {
      const response = await c.api(method, path, body);
      return response.status === 503 ? undefined : response;
    },
    60_000,
  );
}

/**
 * The one line a refused process says why in. Node may warn before it (etcd's gRPC client sets the TLS server name
 * to the endpoint's IP address, which Node deprecates); that is not the refusal.
 */
function refusal(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.startsWith('consortium: '));
  return lines.length === 1 ? (lines[0] ?? '') : `not one line: ${stderr}`;
}

const alive = (p: HostProcess): boolean => p.child.exitCode === null && p.child.signalCode === null;

describe.skipIf(unavailable !== undefined)('a cluster of separate hosts over TLS', () => {
  it('50 hosts through a killed leader, a pulled cable and a PostgreSQL restart: every job ends once, no address twice', async () => {
    cluster = await startMultiHostCluster({ leaseTtlSeconds: 4 });
    const c = cluster;
    const db = c.hosts['db']!.address;

    // The cluster and four misconfigured processes start side by side; each refusal is one line on stderr and a
    // non-zero exit, never a hang.
    const [wrongEtcdCa, noEtcdCert, wrongStoreCa, noStoreCert, , , , workerA] = await Promise.all([
      c.refused('worker', 'bad-etcd-ca', { etcdCa: c.stranger.cert }),
      c.refused('worker', 'no-etcd-cert', { noEtcdClientCert: true }),
      c.refused('master', 'bad-store-ca', { storeCa: c.stranger.cert }),
      c.refused('web', 'no-store-cert', { noStoreClientCert: true }),
      c.start('web', 'web'),
      c.start('master', 'master-a'),
      c.start('master', 'master-b'),
      c.start('worker', 'worker-a'),
      c.start('worker', 'worker-b'),
    ]);
    const pgAt = `The PostgreSQL store at ${db}:5432/consortium is unavailable`;
    expect(
      [wrongEtcdCa, noEtcdCert, wrongStoreCa, noStoreCert].map((r) => [r.code, refusal(r.stderr)]),
    ).toEqual([
      [
        1,
        `consortium: TLS handshake with etcd at https://${db}:2379 failed: unable to verify the first certificate ` +
          '(its certificate is not signed by the CA this process trusts, or does not name this address)',
      ],
      [
        1,
        expect.stringMatching(
          new RegExp(
            `^consortium: etcd at https://${db.replaceAll('.', '\\.')}:2379 refused the TLS handshake: ` +
              '(sslv3 alert bad certificate|tlsv13 alert certificate required) ' +
              '\\(it takes only client certificates signed by a CA it trusts\\)$',
          ),
        ),
      ],
      [1, `consortium: ${pgAt}: self-signed certificate in certificate chain`],
      [1, `consortium: ${pgAt}: connection requires a valid client certificate`],
    ]);

    const subnet = await call(c, 'POST', '/api/inventory/subnet?wait=60s', {
      name: 's1',
      attrs: { cidr: '10.8.0.0/24', gateway: '10.8.0.1' },
    });
    expect([subnet.status, subnet.body.state]).toEqual([200, 'succeeded']);
    // Slow NetBox down so that the faults below meet jobs in flight.
    c.netbox.injectFault({
      method: 'POST',
      path: '/api/virtualization/virtual-machines/',
      delayMs: 600,
      times: HOSTS,
    });

    const ids: string[] = [];
    const create = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const r = await call(c, 'POST', '/api/inventory/host', {
          name: `mh-${i}`,
          attrs: { datacenter: 'pek1', subnet: 's1' },
        });
        expect(r.status).toBe(202);
        ids.push(r.body.id as string);
      }
    };
    await create(0, HOSTS / 2);
    const leader = await c.leader();
    leader.child.kill('SIGKILL');
    await create(HOSTS / 2, HOSTS);
    const standby = c.processes.find((p) => p.role === 'master' && p !== leader && alive(p))!;
    await until(
      'the standby to lead',
      () => Promise.resolve(standby.lines('leadership acquired').length > 0 ? true : undefined),
      30_000,
    );

    // Worker A's cable out for twice the lease TTL: its lease lapses, its tasks go to worker B.
    await c.lab.linkDown(workerA.host);
    await sleep(2 * c.leaseTtlSeconds * 1000);
    await c.lab.linkUp(workerA.host);
    await c.postgres.restart();

    for (const id of ids) {
      const job = await until(
        `job ${id}`,
        async () => {
          const r = await c.api('GET', `/api/jobs/${id}?wait=30s`);
          return TERMINAL.includes(r.body?.state as string) ? r.body : undefined;
        },
        120_000,
      );
      expect([id, job.state, job.failure?.message]).toEqual([id, 'succeeded', undefined]);
    }

    const store = await c.store();
    for (const id of ids) {
      expect([id, (await store.listEvents(id, 0)).filter((e) => e.type === 'ended').length]).toEqual([id, 1]);
    }
    const ipOf = new Map<string, string>();
    for (let i = 0; i < HOSTS; i++) {
      const node = await store.getNode('host', `mh-${i}`);
      const ip = (node?.attrs['interfaces'] as { ip?: string }[] | undefined)?.[0]?.ip;
      expect([`mh-${i}`, typeof ip]).toEqual([`mh-${i}`, 'string']);
      ipOf.set(`host/mh-${i}`, ip!);
    }
    expect(new Set(ipOf.values()).size).toBe(HOSTS);
    const reservations = await store.listReservations('ipam/s1');
    expect(new Map(reservations.map((r) => [r.owner, r.key]))).toEqual(ipOf);
    expect(reservations).toHaveLength(HOSTS);
    for (let i = 0; i < HOSTS; i++) expect(c.netbox.state.vmsByName(`mh-${i}`)).toHaveLength(1);
    // Worker A came back and carries on; nothing else died.
    expect(
      c.processes
        .filter(alive)
        .map((p) => p.name)
        .sort(),
    ).toEqual(['master-a', 'master-b', 'web', 'worker-a', 'worker-b'].filter((name) => name !== leader.name));
  }, 360_000);
});
