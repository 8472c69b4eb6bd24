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

/**
 * Each behaviour is checked against the upstream source at the tag v3.3.7 of github.com/cobbler/cobbler; the
 * comments name the file and function.
 */
describe('the Cobbler 3.3.7 test server', () => {
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
    // validate.mac_address lowercases MACs. Since 3.3.4 `System.__init__` starts with `self._interfaces = {}`: a
    // new system has no "default" interface, only the ones modify_interface named.
    expect(Object.keys(system['interfaces'])).toEqual(['eth0']);
    expect(system['interfaces'].eth0.mac_address).toBe('52:54:00:aa:bb:01');
    expect(system['interfaces'].eth0.ip_address).toBe('10.1.2.34');
    // `NetworkInterface.to_dict` writes enums as `value.name.lower()`: NetworkInterfaceType.NA is "na".
    expect(system['interfaces'].eth0.interface_type).toBe('na');
    expect(await call(url, 'find_system', [{ mac_address: '52:54:00:aa:bb:01' }])).toEqual(['web-01']);
    expect(await call(url, 'find_system', [{ name: 'web-*' }, true])).toHaveLength(1);
  });

  it('lists every system with get_systems (live edits in, unsaved new systems out) and counts calls per method', async () => {
    // remote.py get_systems -> get_items("system"): [x.to_dict() for x in api.get_items("system")], no token.
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    server.addSystem({ name: 'db-01', profile: 'rocky9' });
    const unsaved = await call(url, 'new_system', [token]);
    await call(url, 'modify_system', [unsaved, 'name', 'web-02', token]);
    const live = await call(url, 'get_system_handle', ['web-01', token]);
    await call(url, 'modify_system', [live, 'profile', 'rocky9', token]);
    const systems = (await call(url, 'get_systems', [])) as Record<string, any>[];
    expect(systems.map((s) => [s['name'], s['profile']])).toEqual([
      ['web-01', 'rocky9'],
      ['db-01', 'rocky9'],
    ]);
    expect(systems[0]?.['interfaces'].eth0.mac_address).toBe('52:54:00:00:00:01');
    // page, results_per_page and token are ignored; a fourth positional argument is Python's TypeError.
    expect(await call(url, 'get_systems', [1, 10, token])).toHaveLength(2);
    expect(await fault(call(url, 'get_systems', [1, 10, token, 'x']))).toBe(
      "<class 'TypeError'>:get_systems() takes from 1 to 4 positional arguments but 5 were given",
    );
    server.injectFault('get_systems', 'cannot read the collection');
    expect(await fault(call(url, 'get_systems', []))).toBe(
      "<class 'cobbler.cexceptions.CX'>:'cannot read the collection'",
    );
    expect(server.callCounts()).toEqual({
      login: 1,
      new_system: 2,
      modify_system: 6,
      save_system: 1,
      get_system_handle: 1,
      get_systems: 4,
    });
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

  it('refuses a MAC, an IP or a DNS name another system has, naming that system', async () => {
    // items/system.py, the `NetworkInterface.mac_address`, `.ip_address` and `.dns_name` setters.
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    const edit = await call(url, 'get_system_handle', ['web-01', token]);
    await call(url, 'modify_system', [
      edit,
      'modify_interface',
      { 'dns_name-eth0': 'web-01.example.com' },
      token,
    ]);
    const handle = await call(url, 'new_system', [token]);
    const modify = (fields: Record<string, string>): Promise<unknown> =>
      call(url, 'modify_system', [handle, 'modify_interface', fields, token]);
    expect(await fault(modify({ 'mac_address-eth0': '52:54:00:00:00:01' }))).toBe(
      `<class 'ValueError'>:MAC address duplicate found "52:54:00:00:00:01". Object with the conflict has the name "web-01"`,
    );
    expect(await fault(modify({ 'ip_address-eth0': '10.1.2.34' }))).toBe(
      `<class 'ValueError'>:IP address duplicate found "10.1.2.34". Object with the conflict has the name "web-01"`,
    );
    // The DNS name was only edited through the handle, never saved: the index already holds it.
    expect(await fault(modify({ 'dns_name-eth0': 'web-01.example.com' }))).toBe(
      `<class 'ValueError'>:DNS name duplicate found "web-01.example.com". Object with the conflict has the name "web-01"`,
    );
    // A system may keep its own values: the setter skips a match that holds this very interface.
    expect(
      await call(url, 'modify_system', [edit, 'modify_interface', { 'ip_address-eth0': '10.1.2.34' }, token]),
    ).toBe(true);
    expect(
      await fault(
        call(url, 'modify_system', [handle, 'modify_interface', { 'mac_address-eth0': 'zz' }, token]),
      ),
    ).toBe("<class 'ValueError'>:Invalid mac address format (zz)");
  });

  it('validates netmasks and addresses with inet_aton rules: 24 is an address, not a netmask', async () => {
    // validate.py `ipv4_netmask`/`ipv4_address` with python3-netaddr < 1.0 (`valid_ipv4` uses inet_aton): "24" is
    // 0.0.0.24, a valid address that is not a netmask; "255.255.255.0" is a netmask, so not a host address.
    const token = await login();
    const handle = await call(url, 'new_system', [token]);
    const modify = (fields: Record<string, string>): Promise<unknown> =>
      call(url, 'modify_system', [handle, 'modify_interface', fields, token]);
    expect(await fault(modify({ 'netmask-eth0': '24' }))).toBe(
      "<class 'ipaddress.NetmaskValueError'>:Invalid IPv4 netmask (24)",
    );
    expect(await fault(modify({ 'netmask-eth0': '255.255.256.0' }))).toBe(
      "<class 'ipaddress.AddressValueError'>:Invalid IPv4 address format (255.255.256.0)",
    );
    expect(await fault(modify({ 'ip_address-eth0': '255.255.255.0' }))).toBe(
      "<class 'ipaddress.NetmaskValueError'>:Invalid IPv4 host address (255.255.255.0)",
    );
    expect(await modify({ 'netmask-eth0': '255.255.255.0', 'ip_address-eth0': '10.1.2.3' })).toBe(true);
  });

  it('answers version 3.307', async () => {
    // api.py `CobblerAPI.version`: float(format(3 + 0.1 * 3 + 0.001 * 7, '.3f')).
    expect(await call(url, 'version')).toBe(3.307);
  });

  it('finds MAC, IP and DNS name exactly through the indexes, names by glob, and nothing for an unknown field', async () => {
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    await createSystem(token, 'web-02', '52:54:00:00:00:02', '10.1.2.35');
    // collection.py `Collection.find`/`find_by_indexes`: an indexed value without glob characters is an exact
    // lookup; with them, item.py `find_match_single_key` passes the interface's value as the pattern, so a
    // searched glob never matches a MAC or an IP.
    expect(await call(url, 'find_system', [{ mac_address: '52:54:00:00:00:01' }])).toEqual(['web-01']);
    expect(await call(url, 'find_system', [{ mac: '52:54:00:00:00:02' }])).toEqual(['web-02']);
    expect(await call(url, 'find_system', [{ mac_address: '52:54:00:00:00:*' }])).toEqual([]);
    expect(await call(url, 'find_system', [{ ip_address: '10.1.2.3' }])).toEqual([]);
    expect(await call(url, 'find_system', [{ ip_address: '10.1.2.3?' }])).toEqual([]);
    // Top-level fields compare lowercased, as globs.
    expect(await call(url, 'find_system', [{ name: 'WEB-*' }])).toEqual(['web-01', 'web-02']);
    expect(await call(url, 'find_system', [{ name: 'web-0[2]' }])).toEqual(['web-02']);
    // The `raise CX("searching for field that does not exist")` is commented out upstream: no match, no fault.
    expect(await call(url, 'find_system', [{ no_such_field: 'x' }])).toEqual([]);
    expect(await fault(call(url, 'find_system', [{}]))).toBe(
      "<class 'ValueError'>:calling find with no arguments",
    );
  });

  it('shows old interface values after an unsaved modify_interface until a save or a top-level change', async () => {
    // The packaged settings.yaml sets `cache_enabled: true`; item.py `Item.to_dict` answers from `ItemCache`, which
    // `Item.__setattr__` clears when a top-level field is set and `Collection.add` clears by setting mtime. The
    // interface setters live on `NetworkInterface` and clear nothing.
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    const read = async (): Promise<Record<string, any>> =>
      (await call(url, 'get_system', ['web-01'])) as Record<string, any>;
    expect((await read())['interfaces'].eth0.mac_address).toBe('52:54:00:00:00:01');
    const handle = await call(url, 'get_system_handle', ['web-01', token]);
    await call(url, 'modify_system', [
      handle,
      'modify_interface',
      { 'mac_address-eth0': '52:54:00:00:00:09' },
      token,
    ]);
    expect((await read())['interfaces'].eth0.mac_address).toBe('52:54:00:00:00:01');
    // The index follows the edit at once (systems.py `update_interface_index_value`).
    expect(await call(url, 'find_system', [{ mac_address: '52:54:00:00:00:09' }])).toEqual(['web-01']);
    await call(url, 'modify_system', [handle, 'comment', 'edited', token]);
    expect((await read())['interfaces'].eth0.mac_address).toBe('52:54:00:00:00:09');
    // Memory has the edit; the disk does not until save_system.
    expect(server.system('web-01')?.interfaces['eth0']?.['mac_address']).toBe('52:54:00:00:00:01');
    await call(url, 'save_system', [handle, token, 'bypass']);
    expect(server.system('web-01')?.interfaces['eth0']?.['mac_address']).toBe('52:54:00:00:00:09');
  });

  it('keeps only saved systems across a cobblerd restart, and forgets tokens', async () => {
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    const handle = await call(url, 'get_system_handle', ['web-01', token]);
    await call(url, 'modify_system', [handle, 'hostname', 'edited.example.com', token]);
    expect(((await call(url, 'get_system', ['web-01'])) as { hostname: string }).hostname).toBe(
      'edited.example.com',
    );
    // cobblerd keeps systems, tokens (`token_cache`) and new objects (`object_cache`) in memory and reads the
    // collections back from disk on start (`CobblerAPI.deserialize`).
    server.restart();
    expect(((await call(url, 'get_system', ['web-01'])) as { hostname: string }).hostname).toBe('');
    expect(await call(url, 'token_check', [token])).toBe(false);
  });

  it("writes PXE files on save and leaves the old MAC's file until a full sync, which can fail", async () => {
    // collection.py `Collection.add` → `sync_systems` → tftpgen.py `write_all_system_files` writes
    // pxelinux.cfg/01-<mac> per interface and removes nothing; sync.py `CobblerSync.run` → `clean_trees` empties
    // pxelinux.cfg first, and `utils.die("cannot find directory: ...")` when the TFTP root is missing.
    const token = await login();
    await createSystem(token, 'web-01', '52:54:00:00:00:01', '10.1.2.34');
    expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-00-00-01']);
    const handle = await call(url, 'get_system_handle', ['web-01', token]);
    await call(url, 'modify_system', [
      handle,
      'modify_interface',
      { 'mac_address-eth0': '52:54:00:00:00:02' },
      token,
    ]);
    await call(url, 'save_system', [handle, token, 'bypass']);
    expect(server.pxeFiles()).toEqual([
      'pxelinux.cfg/01-52-54-00-00-00-01',
      'pxelinux.cfg/01-52-54-00-00-00-02',
    ]);
    server.setSyncFailure('cannot find directory: /var/lib/tftpboot');
    expect(await fault(call(url, 'sync', [token]))).toBe(
      "<class 'cobbler.cexceptions.CX'>:'cannot find directory: /var/lib/tftpboot'",
    );
    expect(server.pxeFiles()).toHaveLength(2);
    server.setSyncFailure(undefined);
    expect(await call(url, 'sync', [token])).toBe(true);
    expect(server.pxeFiles()).toEqual(['pxelinux.cfg/01-52-54-00-00-00-02']);
    await call(url, 'remove_system', ['web-01', token]);
    expect(server.pxeFiles()).toEqual([]);
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

  it('expires tokens only when someone calls token_check after their lifetime, which token_check refreshes', async () => {
    // remote.py: `check_access` → `get_user_from_token` neither purges nor refreshes; only `token_check` →
    // `__validate_token` runs `__invalidate_expired_tokens` (for every token) and refreshes the checked one.
    let now = 1_000_000;
    await server.stop();
    server = await startCobblerServer({
      users: { admin: 's3cret' },
      profiles: ['debian12'],
      tokenTtlMs: 3_600_000,
      now: () => now,
    });
    url = server.url;
    const token = await login();
    const other = await login();
    now += 3_000_000;
    expect(await call(url, 'token_check', [other])).toBe(true);
    now += 3_000_000;
    // Past the lifetime, and a write call neither refuses nor refreshes it.
    expect(await call(url, 'sync', [token])).toBe(true);
    expect(await call(url, 'token_check', [other])).toBe(true);
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

  it('answers XML-RPC at / and /RPC2 as cobblerd, and 404 "No such page" elsewhere, /cobbler_api included', async () => {
    // remote.py `CobblerXMLRPCServer` keeps `SimpleXMLRPCRequestHandler.rpc_paths = ('/', '/RPC2')`; Apache's
    // cobbler.conf proxies /cobbler_api to it.
    const cobblerd = await startCobblerServer({ endpoint: 'cobblerd' });
    try {
      expect(cobblerd.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await call(cobblerd.url, 'version')).toBe(3.307);
      expect(await call(`${cobblerd.url}RPC2`, 'version')).toBe(3.307);
      const error = (await call(`${cobblerd.url}cobbler_api`, 'version').catch(
        (e: unknown) => e,
      )) as CallError;
      expect(error.res?.statusCode).toBe(404);
    } finally {
      await cobblerd.stop();
    }
    const apache = (await call(url.replace('/cobbler_api', '/RPC2'), 'version').catch(
      (e: unknown) => e,
    )) as CallError;
    expect(apache.res?.statusCode).toBe(404);
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
