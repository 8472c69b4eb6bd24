/**
 * Secure links of a process: `consortium web` over HTTPS with `web.tls`, `trust proxy` from `web.trustProxy`, and the
 * etcd coordinator's TLS and password settings (the password from the environment or a file, never the config).
 */
import { get } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, silentLogger } from '@consortium/core';
import { EtcdCoordinator } from '@consortium/coord-etcd';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import { makeCertificateAuthority } from '@consortium/testkit';
import type { CertificateAuthority } from '@consortium/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLogger } from './logging.js';
import { openCoordinator, startRoles } from './process.js';
import { createApp } from './web/app.js';
import type { WebDeps } from './web/app.js';
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

  it('web.trustProxy: X-Forwarded-* is believed from the proxies named and no one else', () => {
    // Only what building the app touches: the routes read the rest when a request comes.
    const coordinator = new MemoryCoordinator(new MemoryCluster(), { memberId: 'trust-proxy-test' });
    const deps = { coordinator, logger: silentLogger } as unknown as WebDeps;
    type Trust = (address: string, hop: number) => boolean;
    const trusts = createApp({ ...deps, trustProxy: ['loopback', '10.1.0.0/16'] }).get(
      'trust proxy fn',
    ) as Trust;
    expect([trusts('127.0.0.1', 0), trusts('10.1.2.3', 0), trusts('10.2.0.1', 0)]).toEqual([
      true,
      true,
      false,
    ]);
    const none = createApp(deps).get('trust proxy fn') as Trust;
    expect(none('127.0.0.1', 0)).toBe(false);
    void coordinator.close();
  });

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
