/**
 * Secure links of a process: `consortium web` over HTTPS with `web.tls`, `trust proxy` from `web.trustProxy`, and the
 * etcd coordinator's TLS and password settings (the password from the environment or a file, never the config).
 */
import { get } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '@consortium/core';
import { EtcdCoordinator } from '@consortium/coord-etcd';
import { makeCertificateAuthority } from '@consortium/testkit';
import type { CertificateAuthority } from '@consortium/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLogger } from './logging.js';
import { openCoordinator, startRoles } from './process.js';
import { tempDir } from './test-support/dev-server.js';

let ca: CertificateAuthority | undefined;
const data = tempDir('consortium-secure-');

beforeAll(async () => {
  ca = await makeCertificateAuthority('web-test-ca');
}, 30_000);

afterAll(() => {
  ca?.remove();
  data.remove();
});

function authority(): CertificateAuthority {
  if (ca === undefined) throw new Error('no CA (see beforeAll)');
  return ca;
}

function configFile(name: string, body: Record<string, unknown>): string {
  const path = join(data.dir, name);
  writeFileSync(
    path,
    JSON.stringify({ dataDir: join(data.dir, 'data'), log: { level: 'error', format: 'json' }, ...body }),
  );
  return path;
}

/** GETs `url` trusting only the CA `caPem`; resolves with the status and body. */
function httpsGet(url: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca: caPem }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body });
      });
    }).on('error', reject);
  });
}

const logger = createLogger({ level: 'error', format: 'json' });

describe('secure links', () => {
  it('web.tls: the web role serves HTTPS with the certificate given, and nothing in clear', async () => {
    const server = await authority().server('web', { ips: ['127.0.0.1'] });
    const config = loadConfig(
      { configFile: configFile('web.yaml', { web: { host: '127.0.0.1', port: 0, tls: server } }) },
      {},
    );
    let url = '';
    const running = await startRoles(config, ['web'], (ready) => (url = ready.url));
    try {
      for (let i = 0; i < 200 && url === ''; i++) await new Promise((r) => setTimeout(r, 10));
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const health = await httpsGet(`${url}/healthz`, readFileSync(authority().cert, 'utf8'));
      expect(health).toEqual({ status: 200, body: JSON.stringify({ status: 'ok' }) });
      // A client that does not trust the CA is refused by its own TLS check.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow('fetch failed');
      await expect(fetch(url.replace('https:', 'http:') + '/healthz')).rejects.toThrow('fetch failed');
    } finally {
      running.stop();
      await running.done;
    }
  }, 30_000);

  it('web.tls naming a file that is not there: one line naming it', async () => {
    const config = loadConfig(
      {
        configFile: configFile('missing.yaml', {
          web: { port: 0, tls: { cert: '/nonexistent/web.crt', key: '/nonexistent/web.key' } },
        }),
      },
      {},
    );
    await expect(startRoles(config, ['web'], () => undefined)).rejects.toThrow(
      new InputError('cannot read web certificate file /nonexistent/web.crt: ENOENT'),
    );
  });

  it('web.trustProxy: the request log takes the client from X-Forwarded-For only from the proxies named', async () => {
    const clients = async (trustProxy: string | undefined): Promise<unknown[]> => {
      const name = (trustProxy ?? 'none').replace(/[^a-z0-9]/g, '-');
      const config = loadConfig(
        {
          configFile: configFile(`trust-${name}.yaml`, {
            dataDir: join(data.dir, `trust-${name}`),
            web: { host: '127.0.0.1', port: 0, ...(trustProxy === undefined ? {} : { trustProxy }) },
            log: { level: 'debug', format: 'json' },
          }),
        },
        {},
      );
      let url = '';
      const running = await startRoles(config, ['web'], (ready) => (url = ready.url));
      const seen: unknown[] = [];
      // The logger is an object-mode stream: every entry that passes its level comes out as data.
      running.logger.on('data', (info: Record<string, unknown>) => {
        if (info['message'] === 'request' && info['path'] === '/healthz') seen.push(info['client']);
      });
      try {
        for (let i = 0; i < 200 && url === ''; i++) await new Promise((r) => setTimeout(r, 10));
        const response = await fetch(`${url}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
        expect(response.status).toBe(200);
        for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      } finally {
        running.stop();
        await running.done;
      }
      return seen;
    };
    // The test's requests come from 127.0.0.1: a trusted proxy when `loopback` is named, a plain client otherwise.
    expect(await clients('loopback')).toEqual(['203.0.113.7']);
    expect(await clients('10.1.0.0/16')).toEqual(['127.0.0.1']);
    expect(await clients(undefined)).toEqual(['127.0.0.1']);
  }, 60_000);

  it('coordinator.auth takes the password from CONSORTIUM_ETCD_PASSWORD or its file, and refuses a user without one', async () => {
    const passwordFile = join(data.dir, 'etcd-password');
    writeFileSync(passwordFile, 'from-the-file\n');
    const base = { driver: 'etcd', endpoints: ['https://127.0.0.1:2379'] };
    const noPassword = loadConfig(
      { configFile: configFile('np.yaml', { coordinator: { ...base, auth: { username: 'consortium' } } }) },
      {},
    );
    expect(() => openCoordinator(noPassword, logger, {})).toThrow(
      new InputError(
        'coordinator.auth names user consortium but no password: set CONSORTIUM_ETCD_PASSWORD or coordinator.auth.passwordFile',
      ),
    );
    const fromEnv = openCoordinator(noPassword, logger, { CONSORTIUM_ETCD_PASSWORD: 'from-env' });
    expect(fromEnv).toBeInstanceOf(EtcdCoordinator);
    await fromEnv.close();
    const withFile = loadConfig(
      {
        configFile: configFile('pf.yaml', {
          coordinator: {
            ...base,
            auth: { username: 'consortium', passwordFile },
            tls: { ca: authority().cert },
          },
        }),
      },
      {},
    );
    const fromFile = openCoordinator(withFile, logger, {});
    expect(fromFile).toBeInstanceOf(EtcdCoordinator);
    await fromFile.close();
    const plainWithTls = loadConfig(
      {
        configFile: configFile('pt.yaml', {
          coordinator: {
            driver: 'etcd',
            endpoints: ['http://127.0.0.1:2379'],
            tls: { ca: authority().cert },
          },
        }),
      },
      {},
    );
    expect(() => openCoordinator(plainWithTls, logger, {})).toThrow(
      new InputError('etcd TLS is configured but endpoint http://127.0.0.1:2379 is not https://'),
    );
    const missingCa = loadConfig(
      {
        configFile: configFile('mc.yaml', {
          coordinator: { ...base, tls: { ca: '/nonexistent/ca.crt' } },
        }),
      },
      {},
    );
    expect(() => openCoordinator(missingCa, logger, {})).toThrow(
      new InputError('cannot read etcd CA file /nonexistent/ca.crt: ENOENT'),
    );
  });
});
