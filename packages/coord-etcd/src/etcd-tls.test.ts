/**
 * The etcd coordinator over TLS with client certificates and etcd's own authentication, against a real etcd started
 * with `--client-cert-auth` and `auth enable`: a member with the right CA, certificate and password works, and each
 * wrong piece is refused at start-up in one line naming the endpoint instead of retrying forever.
 */
import { readFileSync } from 'node:fs';
import { BackendError, BackendUnavailableError, InputError } from '@consortium/core';
import type { Logger } from '@consortium/core';
import { makeCertificateAuthority, startEtcd } from '@consortium/testkit';
import type { CertFiles, CertificateAuthority, EtcdHarness } from '@consortium/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCoordinator } from './etcd-coordinator.js';
import type { EtcdCoordinatorOptions, EtcdTls } from './etcd-coordinator.js';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const prefix = '/tls-test/';
const password = 'consortium-secret';

let ca: CertificateAuthority | undefined;
let stranger: CertificateAuthority | undefined;
let client: CertFiles;
let strangerClient: CertFiles;
let etcd: EtcdHarness | undefined;

beforeAll(async () => {
  ca = await makeCertificateAuthority('etcd-test-ca');
  stranger = await makeCertificateAuthority('stranger-ca');
  const server = await ca.server('etcd', { ips: ['127.0.0.1'] });
  client = await ca.client('consortium');
  strangerClient = await stranger.client('consortium');
  const harnessClient = await ca.client('root');
  etcd = await startEtcd({
    tls: { ca: ca.cert, ...server, client: harnessClient },
    auth: { rootPassword: 'root-secret', users: [{ name: 'consortium', password, prefix }] },
  });
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
  ca?.remove();
  stranger?.remove();
});

function running(): { etcd: EtcdHarness; ca: CertificateAuthority; stranger: CertificateAuthority } {
  if (etcd === undefined || ca === undefined || stranger === undefined)
    throw new Error('setup failed (see beforeAll)');
  return { etcd, ca, stranger };
}

function pemOf(files: { readonly ca?: string; readonly cert?: string; readonly key?: string }): EtcdTls {
  const read = (path: string | undefined): Buffer | undefined =>
    path === undefined ? undefined : readFileSync(path);
  const ca = read(files.ca);
  const cert = read(files.cert);
  const key = read(files.key);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

async function withMember<T>(
  options: Partial<EtcdCoordinatorOptions>,
  use: (member: EtcdCoordinator) => Promise<T>,
): Promise<T> {
  const member = new EtcdCoordinator({
    endpoints: running().etcd.endpoint,
    prefix: `${prefix}m/`,
    leaseTtlSeconds: 3,
    logger: quiet,
    ...options,
  });
  try {
    return await use(member);
  } finally {
    await member.close();
  }
}

describe('EtcdCoordinator over TLS with client certificates and authentication', () => {
  it('works with the CA, a client certificate and the password: elections, queues and notifications', async () => {
    const tls = pemOf({ ca: running().ca.cert, ...client });
    await withMember({ tls, auth: { username: 'consortium', password } }, async (member) => {
      await member.verifyAccess();
      const scope = new AbortController();
      const held = await member.campaign('master', scope.signal);
      expect(held.lost.aborted).toBe(false);
      const got: string[] = [];
      const unsubscribe = member.subscribe('t/', (topic) => got.push(topic));
      const queue = member.queue('jobs');
      expect(await queue.enqueue({ id: 'a', payload: { n: 1 } })).toBe(true);
      const claimed = await queue.claim('w', scope.signal);
      expect(claimed.payload).toEqual({ n: 1 });
      expect(await queue.ack(claimed)).toBe(true);
      for (let i = 0; i < 100 && got.length === 0; i++) {
        await member.notify('t/x', 1);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(got[0]).toBe('t/x');
      unsubscribe();
      await held.release();
    });
  }, 30_000);

  it("a CA that did not sign etcd's certificate: refused at once, naming the endpoint", async () => {
    const { etcd: server, stranger: other } = running();
    const tls = pemOf({ ca: other.cert, ...client });
    await withMember({ tls, auth: { username: 'consortium', password } }, async (member) => {
      const error = await member.verifyAccess().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendError);
      expect((error as Error).message).toBe(
        `TLS handshake with etcd at ${server.endpoint} failed: unable to verify the first certificate ` +
          '(its certificate is not signed by the CA this process trusts, or does not name this address)',
      );
    });
  }, 30_000);

  it('no client certificate: etcd refuses the handshake, and the message says so', async () => {
    const { etcd: server, ca: authority } = running();
    await withMember(
      { tls: pemOf({ ca: authority.cert }), auth: { username: 'consortium', password } },
      async (member) => {
        const error = await member.verifyAccess().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BackendError);
        expect((error as Error).message).toMatch(
          new RegExp(
            `^etcd at ${server.endpoint.replaceAll('.', '\\.')} refused the TLS handshake: ` +
              '(sslv3 alert bad certificate|tlsv13 alert certificate required) ' +
              '\\(it takes only client certificates signed by a CA it trusts\\)$',
          ),
        );
      },
    );
  }, 30_000);

  it('a client certificate from a CA etcd does not trust: refused the same way', async () => {
    const { etcd: server, ca: authority } = running();
    const tls = pemOf({ ca: authority.cert, ...strangerClient });
    await withMember({ tls, auth: { username: 'consortium', password } }, async (member) => {
      const error = await member.verifyAccess().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^etcd at ${server.endpoint.replaceAll('.', '\\.')} refused the TLS handshake: \\S.* ` +
            '\\(it takes only client certificates signed by a CA it trusts\\)$',
        ),
      );
    });
  }, 30_000);

  it('a wrong password, and a user without access to the prefix, are refused by name', async () => {
    const { etcd: server, ca: authority } = running();
    const tls = pemOf({ ca: authority.cert, ...client });
    await withMember({ tls, auth: { username: 'consortium', password: 'wrong' } }, async (member) => {
      await expect(member.verifyAccess()).rejects.toThrow(
        new BackendError(
          `etcd at ${server.endpoint} refused user consortium: authentication failed, invalid user ID or password`,
        ),
      );
    });
    await withMember(
      { tls, auth: { username: 'consortium', password }, prefix: '/elsewhere/' },
      async (member) => {
        await expect(member.verifyAccess()).rejects.toThrow(
          new BackendError(
            `etcd at ${server.endpoint} denies user consortium access to /elsewhere/: permission denied`,
          ),
        );
      },
    );
  }, 30_000);

  it('TLS settings beside an http:// endpoint, or a certificate without its key, are refused up front', () => {
    const tls = pemOf({ ca: running().ca.cert, ...client });
    expect(() => new EtcdCoordinator({ endpoints: 'http://127.0.0.1:2379', tls, logger: quiet })).toThrow(
      new InputError('etcd TLS is configured but endpoint http://127.0.0.1:2379 is not https://'),
    );
    expect(
      () =>
        new EtcdCoordinator({
          endpoints: 'https://127.0.0.1:2379',
          tls: { cert: tls.cert ?? '' },
          logger: quiet,
        }),
    ).toThrow(new InputError('an etcd client certificate needs its key, and a key its certificate'));
  });

  it('an etcd nobody answers at: retried, then unreachable after the time given', async () => {
    await withMember({ endpoints: 'http://127.0.0.1:1' }, async (member) => {
      const error = await member.verifyAccess(2000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toMatch(/^etcd at http:\/\/127\.0\.0\.1:1 is unreachable after 2 s: /);
    });
  }, 30_000);
});
