import xmlrpc from 'xmlrpc';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CobblerTestServer } from './server.js';
import { startCobblerServer } from './server.js';
import { pythonRepr } from './python-error.js';

type CallError = Error & { faultString?: string; code?: string; res?: { statusCode: number } };

function call(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    xmlrpc.createClient({ url }).methodCall(method, params, (error: unknown, value: unknown) => {
      if (error instanceof Error) reject(error);
      else resolve(value);
    });
  });
}

async function fault(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as CallError).faultString;
  }
  throw new Error('expected a fault');
}

let server: CobblerTestServer;
let url: string;

beforeEach(async () => {
  server = await startCobblerServer({ users: { admin: 's3cret' }, profiles: ['debian12', 'rocky9'] });
  url = server.url;
});

afterEach(async () => {
  await server.stop();
});

async function login(): Promise<string> {
  return (await call(url, 'login', ['admin', 's3cret'])) as string;
}

async function createSystem(token: string, name: string, mac: string, ip: string): Promise<void> {
  const handle = await call(url, 'new_system', [token]);
  await call(url, 'modify_system', [handle, 'name', name, token]);
  await call(url, 'modify_system', [handle, 'profile', 'debian12', token]);
  await call(url, 'modify_system', [
    handle,
    'modify_interface',
    { 'mac_address-eth0': mac, 'ip_address-eth0': ip, 'netmask-eth0': '255.255.255.0' },
    token,
  ]);
  await call(url, 'modify_system', [handle, 'netboot_enabled', true, token]);
  await call(url, 'save_system', [handle, token, 'new']);
}

describe('the Cobbler 3.3 test server', () => {
  it('serves /cobbler_api on a loopback port', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/cobbler_api$/);
  });

  it('logs in with a 36-character token and refuses a wrong password with a CX fault', async () => {
    expect(await login()).toHaveLength(36);
    expect(await fault(call(url, 'login', ['admin', 'wrong']))).toBe(
      "<class 'cobbler.cexceptions.CX'>:'login failed (admin)'",
    );
    expect(server.calls.find((c) => c.method === 'login')?.params).toEqual(['admin', '<redacted>']);
  });

  it('answers "~" for a missing system, and the system once it is saved', async () => {
    const token = await login();
    expect(await call(url, 'get_system', ['web-01'])).toBe('~');
    await createSystem(token, 'web-01', '52:54:00:AA:BB:01', '10.1.2.34');
    const system = (await call(url, 'get_system', ['web-01'])) as Record<string, any>;
    expect(system['name']).toBe('web-01');
    expect(system['profile']).toBe('debian12');
    expect(system['netboot_enabled']).toBe(true);
    // Cobbler lowercases MACs and keeps the empty "default" interface every new system starts with.
    expect(Object.keys(system['interfaces'])).toEqual(['default', 'eth0']);
    expect(system['interfaces'].eth0.mac_address).toBe('52:54:00:aa:bb:01');
    expect(system['interfaces'].eth0.ip_address).toBe('10.1.2.34');
    expect(await call(url, 'find_system', [{ mac_address: '52:54:00:aa:bb:01' }])).toEqual(['web-01']);
    expect(await call(url, 'find_system', [{ name: 'web-*' }, true])).toHaveLength(1);
  });

  it('refuses a second system of the same name in "new" mode, and edits through a handle', async () => {
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    const handle = await call(url, 'new_system', [token]);
    await call(url, 'modify_system', [handle, 'name', 'web-01', token]);
    await call(url, 'modify_system', [handle, 'profile', 'debian12', token]);
    expect(await fault(call(url, 'save_system', [handle, token, 'new']))).toBe(
      `<class 'cobbler.cexceptions.CX'>:"An object already exists with that name. Try 'edit'?"`,
    );
    const existing = await call(url, 'get_system_handle', ['web-01', token]);
    expect(existing).toBe('system::web-01');
    expect(await call(url, 'modify_system', [existing, 'profile', 'rocky9', token])).toBe(true);
    expect(await call(url, 'modify_system', [existing, 'no_such_field', 'x', token])).toBe(false);
    expect(await call(url, 'save_system', [existing, token, 'bypass'])).toBe(true);
    expect(server.system('web-01')?.profile).toBe('rocky9');
  });

  it('refuses an unknown profile when it is set and a system without one when it is saved', async () => {
    const token = await login();
    const handle = await call(url, 'new_system', [token]);
    await call(url, 'modify_system', [handle, 'name', 'web-01', token]);
    expect(await fault(call(url, 'modify_system', [handle, 'profile', 'nope', token]))).toBe(
      `<class 'ValueError'>:Profile with the name "nope" is not existing`,
    );
    expect(await fault(call(url, 'save_system', [handle, token]))).toBe(
      "<class 'cobbler.cexceptions.CX'>:'Error with system web-01 - profile or image is required'",
    );
  });

  it('refuses a MAC or an IP another system has', async () => {
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    const handle = await call(url, 'new_system', [token]);
    expect(
      await fault(
        call(url, 'modify_system', [
          handle,
          'modify_interface',
          { 'mac_address-eth0': '52:54:00:00:00:01' },
          token,
        ]),
      ),
    ).toBe("<class 'ValueError'>:MAC address duplicate found: 52:54:00:00:00:01");
    expect(
      await fault(
        call(url, 'modify_system', [handle, 'modify_interface', { 'ip_address-eth0': '10.1.2.34' }, token]),
      ),
    ).toBe("<class 'ValueError'>:IP address duplicate found: 10.1.2.34");
    expect(
      await fault(
        call(url, 'modify_system', [handle, 'modify_interface', { 'mac_address-eth0': 'zz' }, token]),
      ),
    ).toBe("<class 'ValueError'>:Invalid mac address format (zz)");
  });

  it('refuses an invalid or expired token, and token_check says so without a fault', async () => {
    const token = await login();
    expect(await call(url, 'token_check', [token])).toBe(true);
    server.expireTokens();
    expect(await call(url, 'token_check', [token])).toBe(false);
    expect(await fault(call(url, 'new_system', [token]))).toBe(
      `<class 'cobbler.cexceptions.CX'>:${pythonRepr(`invalid token: ${token}`)}`,
    );
    expect(await fault(call(url, 'sync', ['short']))).toBe(
      `<class 'ValueError'>:"token" did not have the correct format or type!`,
    );
  });

  it('expires tokens after the TTL', async () => {
    server.setTokenTtl(20);
    const token = await login();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await fault(call(url, 'sync', [token]))).toMatch(
      /^<class 'cobbler\.cexceptions\.CX'>:'invalid token: /,
    );
  });

  it('has no handle for a missing system and removes a missing system without a fault', async () => {
    const token = await login();
    expect(await fault(call(url, 'get_system_handle', ['ghost', token]))).toBe(
      "<class 'cobbler.cexceptions.CX'>:'internal error, unknown system name ghost'",
    );
    expect(await call(url, 'remove_system', ['ghost', token])).toBe(true);
    expect(await fault(call(url, 'save_system', ['___NEW___system::gone', token]))).toBe(
      "<class 'KeyError'>:'___NEW___system::gone'",
    );
  });

  it('answers an unknown method with a fault, a missing argument with a TypeError, another path with 404', async () => {
    expect(await fault(call(url, 'frobnicate', []))).toBe(
      `<class 'cobbler.cexceptions.CX'>:"unknown remote method 'frobnicate'"`,
    );
    expect(await fault(call(url, 'get_system', []))).toBe(
      "<class 'TypeError'>:get_system() missing 1 required positional argument: 'name'",
    );
    const error = await call(url.replace('/cobbler_api', '/other'), 'get_system', ['x']).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe('Not Found');
  });

  it('injects faults: a CX for N calls, an HTTP error, a dropped connection, a slow answer', async () => {
    const token = await login();
    server.injectFault('sync', 'disk full', 2);
    expect(await fault(call(url, 'sync', [token]))).toBe("<class 'cobbler.cexceptions.CX'>:'disk full'");
    expect(await fault(call(url, 'sync', [token]))).toBe("<class 'cobbler.cexceptions.CX'>:'disk full'");
    expect(await call(url, 'sync', [token])).toBe(true);
    expect(server.syncs()).toBe(1);

    server.injectFault('get_system', { kind: 'http', status: 503 });
    const unavailable = (await call(url, 'get_system', ['x']).catch((e: unknown) => e)) as CallError;
    expect(unavailable.res?.statusCode).toBe(503);

    server.injectFault('get_system', { kind: 'drop' });
    const dropped = (await call(url, 'get_system', ['x']).catch((e: unknown) => e)) as CallError;
    expect(dropped.code).toBe('ECONNRESET');

    server.injectFault('get_system', { kind: 'delay', ms: 50 });
    const started = Date.now();
    expect(await call(url, 'get_system', ['x'])).toBe('~');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(server.calls.filter((c) => c.injected !== undefined).map((c) => c.injected)).toEqual([
      'fault',
      'fault',
      'http',
      'drop',
    ]);
  });

  it('keeps its state across stop and start on the same port', async () => {
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    await server.stop();
    const refused = (await call(url, 'get_system', ['web-01']).catch((e: unknown) => e)) as CallError;
    // A pooled keep-alive socket the server cut reads as a reset; a fresh connection is refused.
    expect(['ECONNREFUSED', 'ECONNRESET']).toContain(refused.code);
    const again = (await call(url, 'get_system', ['web-01']).catch((e: unknown) => e)) as CallError;
    expect(again.code).toBe('ECONNREFUSED');
    await server.start();
    expect(((await call(url, 'get_system', ['web-01'])) as { name: string }).name).toBe('web-01');
    expect(await call(url, 'token_check', [token])).toBe(true);
  });
});
