/**
 * The state and the XML-RPC methods of a simulated Cobbler 3.3.7, as `cobbler/remote.py`, `cobbler/items/system.py`,
 * `cobbler/items/item.py`, `cobbler/validate.py`, `cobbler/cobbler_collections/collection.py` and `systems.py` behave
 * at the upstream tag v3.3.7: read methods need no token, write methods check the token first, `get_system` answers
 * `"~"` for a missing system, new objects live in an object cache under a `___NEW___system::...` handle until saved,
 * a handle from `get_system_handle` edits the live (in-memory) system while the disk keeps the last save, `get_system`
 * answers from a per-item dict cache (`cache_enabled: true` in the packaged settings.yaml) that only a top-level
 * field change or a save clears, duplicate MACs, IPs and DNS names are refused when an interface field is set, an
 * unknown profile is refused when the profile is set, a system without a profile is refused on save, saving writes
 * the system's PXE files and a full `sync` rewrites them all.
 */
import { randomBytes } from 'node:crypto';
import {
  addressValueError,
  attributeError,
  cx,
  keyError,
  netmaskValueError,
  typeError,
  valueError,
} from './python-error.js';

/** What `version` answers for 3.3.7: `api.py` `CobblerAPI.version` is `float(format(3 + 0.1 * 3 + 0.001 * 7, '.3f'))`. */
export const COBBLER_VERSION = 3.307;

/** Cobbler's `CACHE_TIMEOUT`: unsaved objects are forgotten ten minutes after `new_system`. */
export const OBJECT_CACHE_TIMEOUT_MS = 10 * 60 * 1000;

/** Cobbler's default `auth_token_expiration` setting: one hour. */
export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000;

/** One network interface of a system, with the fields Cobbler 3.3 keeps. */
interface NetworkInterface {
  bonding_opts: string;
  bridge_opts: string;
  cnames: string[];
  connected_mode: boolean;
  dhcp_tag: string;
  dns_name: string;
  if_gateway: string;
  interface_master: string;
  interface_type: string;
  ip_address: string;
  ipv6_address: string;
  ipv6_default_gateway: string;
  ipv6_mtu: string;
  ipv6_prefix: string;
  ipv6_secondaries: string[];
  ipv6_static_routes: string[];
  mac_address: string;
  management: boolean;
  mtu: string;
  netmask: string;
  static: boolean;
  static_routes: string[];
  virt_bridge: string;
}

/** A system item. */
interface SystemItem {
  name: string;
  uid: string;
  profile: string;
  image: string;
  hostname: string;
  gateway: string;
  netboot_enabled: boolean;
  status: string;
  comment: string;
  ctime: number;
  mtime: number;
  interfaces: Map<string, NetworkInterface>;
  /**
   * `Item.to_dict`'s cached result (`ItemCache`): `Item.__setattr__` clears it when a top-level field is set and
   * `Collection.add` clears it by setting `mtime`; interface setters live on `NetworkInterface` and do not.
   */
  cached?: SystemDict | undefined;
}

/** A system as `get_system` returns it (a subset of `System.to_dict()`), and as tests inspect it. */
export type SystemDict = Record<string, unknown> & {
  readonly name: string;
  readonly profile: string;
  readonly hostname: string;
  readonly gateway: string;
  readonly netboot_enabled: boolean;
  readonly interfaces: Record<string, Record<string, unknown>>;
};

/** What a test may seed directly into the simulated Cobbler. */
export interface SystemSeed {
  readonly name: string;
  readonly profile: string;
  readonly hostname?: string;
  readonly netboot_enabled?: boolean;
  readonly interfaces?: Readonly<
    Record<string, Partial<Pick<NetworkInterface, 'mac_address' | 'ip_address' | 'netmask' | 'dns_name'>>>
  >;
}

/** Settings of the simulated Cobbler. */
export interface CobblerModelOptions {
  readonly users: Readonly<Record<string, string>>;
  readonly profiles: readonly string[];
  readonly tokenTtlMs: number;
  readonly now: () => number;
}

const INHERIT = '<<inherit>>';
const RE_OBJECT_NAME = /^[a-zA-Z0-9_\-.:]*$/;
const HOST_LABEL = '([a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])';
const RE_HOSTNAME = new RegExp(`^${HOST_LABEL}(\\.${HOST_LABEL})*$`, 'i');
// The formats netaddr's valid_mac accepts with its default dialects.
const RE_MAC = [
  /^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}$/,
  /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/,
  /^[0-9a-f]{12}$/,
];
/**
 * The interface keys `Item.find_match_single_key` (items/item.py) looks up in every interface; a search value equal
 * to an interface's name matches too.
 */
const INTERFACE_SEARCH_KEYS = new Set([
  'cnames',
  'connected_mode',
  'if_gateway',
  'ipv6_default_gateway',
  'ipv6_mtu',
  'ipv6_prefix',
  'ipv6_secondaries',
  'ipv6_static_routes',
  'management',
  'mtu',
  'static',
  'mac_address',
  'ip_address',
  'ipv6_address',
  'netmask',
  'virt_bridge',
  'dhcp_tag',
  'dns_name',
  'static_routes',
  'interface_type',
  'interface_master',
  'bonding_opts',
  'bridge_opts',
  'interface',
]);
/** The unique secondary indexes of the system collection (`Systems.__init__` in cobbler_collections/systems.py). */
const INDEXED_KEYS = ['mac_address', 'ip_address', 'ipv6_address', 'dns_name'] as const;
type IndexedKey = (typeof INDEXED_KEYS)[number];
// `Collection.SEARCH_REKEY`: names the command line uses, mapped to the fields they mean.
const SEARCH_REKEY: Readonly<Record<string, string>> = {
  ip: 'ip_address',
  mac: 'mac_address',
  'netboot-enabled': 'netboot_enabled',
  'dhcp-tag': 'dhcp_tag',
  'virt-bridge': 'virt_bridge',
};

function newInterface(): NetworkInterface {
  return {
    bonding_opts: '',
    bridge_opts: '',
    cnames: [],
    connected_mode: false,
    dhcp_tag: '',
    dns_name: '',
    if_gateway: '',
    interface_master: '',
    // `NetworkInterface.to_dict` writes an enum as `value.name.lower()`: NetworkInterfaceType.NA reads "na".
    interface_type: 'na',
    ip_address: '',
    ipv6_address: '',
    ipv6_default_gateway: '',
    ipv6_mtu: '',
    ipv6_prefix: '',
    ipv6_secondaries: [],
    ipv6_static_routes: [],
    mac_address: '',
    management: false,
    mtu: '',
    netmask: '',
    static: false,
    static_routes: [],
    virt_bridge: '',
  };
}

function newSystem(): SystemItem {
  return {
    name: '',
    uid: '',
    profile: '',
    image: '',
    hostname: '',
    gateway: '',
    netboot_enabled: false,
    status: '',
    comment: '',
    ctime: 0,
    mtime: 0,
    // Since 3.3.4 `System.__init__` starts with `self._interfaces = {}`: no "default" interface; interfaces come
    // from modify_interface (`System.modify_interface` creates the ones it names).
    interfaces: new Map(),
  };
}

/** A deep copy of a system without its dict cache: what `serialize_one_item` writes and a restart reads back. */
function copySystem(system: SystemItem): SystemItem {
  return {
    ...system,
    cached: undefined,
    interfaces: new Map([...system.interfaces].map(([name, i]) => [name, structuredClone(i)])),
  };
}

/** Python's `type(value)` as `str()` shows it inside messages. */
function pythonType(value: unknown): string {
  if (value === null || value === undefined) return "<class 'NoneType'>";
  if (typeof value === 'string') return "<class 'str'>";
  if (typeof value === 'boolean') return "<class 'bool'>";
  if (typeof value === 'number') return Number.isInteger(value) ? "<class 'int'>" : "<class 'float'>";
  if (Array.isArray(value)) return "<class 'list'>";
  return "<class 'dict'>";
}

/** `cobbler.utils.input_boolean`. */
function inputBoolean(value: unknown): boolean {
  if (typeof value !== 'string' && typeof value !== 'boolean' && typeof value !== 'number') {
    throw typeError(
      `The value handed to the input_boolean function was not convertable due to a wrong type (found: ${pythonType(value)})!`,
    );
  }
  return ['true', '1', 'on', 'yes', 'y'].includes(String(value).toLowerCase());
}

function requireString(value: unknown, message: string): string {
  if (typeof value !== 'string') throw typeError(message);
  return value;
}

/**
 * netaddr's `valid_ipv4` with its default flags before netaddr 1.0 (the python3-netaddr the distributions package
 * with 3.3.7): `inet_aton` rules, so `24` is the address 0.0.0.24 and `10.1` is 10.0.0.1; undefined when invalid.
 */
function inetAton(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]*$/.test(part)) value = part.length === 1 ? 0 : parseInt(part.slice(1), 8);
    else if (/^[1-9][0-9]*$/.test(part)) value = Number(part);
    else return undefined;
    values.push(value);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255) || last >= 256 ** (4 - values.length)) return undefined;
  return values.reduce((n, v, i) => n + v * 256 ** (3 - i), 0) + last;
}

/** netaddr's `IPAddress.is_netmask`: the inverted value plus one is a power of two. */
function isNetmask(value: number): boolean {
  const inverted = (value ^ 0xffffffff) >>> 0;
  const plusOne = inverted + 1;
  return (plusOne & inverted) === 0 || plusOne === 2 ** 32;
}

/** `cobbler.validate.ipv4_address`. */
function validateIpv4Address(value: unknown): string {
  const address = requireString(value, 'Invalid input, addr must be a string').trim();
  if (address === '') return address;
  const parsed = inetAton(address);
  if (parsed === undefined) throw addressValueError(`Invalid IPv4 address format (${address})`);
  if (isNetmask(parsed)) throw netmaskValueError(`Invalid IPv4 host address (${address})`);
  return address;
}

/** `cobbler.validate.ipv4_netmask`: `24` is a valid address (0.0.0.24) but not a netmask. */
function validateIpv4Netmask(value: unknown): string {
  const address = requireString(value, 'Invalid input, addr must be a string').trim();
  if (address === '') return address;
  const parsed = inetAton(address);
  if (parsed === undefined) throw addressValueError(`Invalid IPv4 address format (${address})`);
  if (!isNetmask(parsed)) throw netmaskValueError(`Invalid IPv4 netmask (${address})`);
  return address;
}

/** `cobbler.validate.hostname`. */
function validateHostname(value: unknown): string {
  const name = requireString(value, 'Invalid input, dnsname must be a string').trim();
  if (name === '') return name;
  if (!RE_HOSTNAME.test(name)) throw valueError(`Invalid hostname format (${name})`);
  return name;
}

/** `cobbler.validate.mac_address` (for items: `random` and the empty string pass). */
function validateMac(value: unknown): string {
  const mac = requireString(value, 'Invalid input, mac must be a string').toLowerCase().trim();
  if (mac === 'random' || mac === '') return mac;
  if (!RE_MAC.some((re) => re.test(mac))) throw valueError(`Invalid mac address format (${mac})`);
  return mac;
}

/** `fnmatch.fnmatch` on lowercased text: `*`, `?` and `[...]` globs. */
function fnmatch(text: string, pattern: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) source += '\\[';
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replaceAll('\\', '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's').test(text);
}

const hasGlob = (text: string): boolean => /[?*[]/.test(text);

/**
 * `Item.__find_compare(from_search, from_obj)` (items/item.py). A string `from_obj` is compared lowercased, as a
 * glob only when `from_search` has glob characters. For interface fields upstream passes the interface's value as
 * `from_search` and the searched value as `from_obj`, so a searched MAC or IP never acts as a glob there.
 */
function findCompare(fromSearch: unknown, fromObj: unknown): boolean {
  if (typeof fromObj === 'string') {
    const search = String(fromSearch).toLowerCase();
    const obj = fromObj.toLowerCase();
    return hasGlob(search) ? fnmatch(obj, search) : obj === search;
  }
  if (typeof fromSearch === 'string') {
    if (Array.isArray(fromObj)) {
      return fromSearch
        .split(/[\s,]+/)
        .filter((x) => x !== '')
        .every((x) => fromObj.includes(x));
    }
    if (typeof fromObj === 'boolean') {
      return ['true', '1', 'y', 'yes'].includes(fromSearch.toLowerCase()) === fromObj;
    }
  }
  throw typeError(`find cannot compare type: ${pythonType(fromObj)}`);
}

function interfaceDict(iface: NetworkInterface): Record<string, unknown> {
  return structuredClone({ ...iface });
}

/** The PXE file name of one interface: `System.get_config_filename(interface, loader="pxe")`. */
function pxeFileName(system: SystemItem, iface: NetworkInterface): string {
  if (iface.mac_address !== '')
    return `pxelinux.cfg/01-${iface.mac_address.toLowerCase().replaceAll(':', '-')}`;
  if (iface.ip_address !== '') {
    const value = inetAton(iface.ip_address) ?? 0;
    return `pxelinux.cfg/${value.toString(16).toUpperCase().padStart(8, '0')}`;
  }
  return `pxelinux.cfg/${system.name}`;
}

/** The simulated Cobbler: state plus one method per XML-RPC call it answers. */
export class CobblerModel {
  /** The system collection in cobblerd's memory, by name: what every read answers from. */
  private systemsByName = new Map<string, SystemItem>();
  /** The systems as last saved to disk (`serialize_one_item`): what a restart reads back. */
  private readonly savedByName = new Map<string, SystemItem>();
  /** Unsaved objects by handle, with when they were made. */
  private readonly objectCache = new Map<string, { readonly at: number; readonly system: SystemItem }>();
  /** Login tokens with when they were made or last passed to `token_check`, and for whom. */
  private readonly tokens = new Map<string, { at: number; readonly user: string }>();
  /** The files under `pxelinux.cfg/` in the TFTP root, with the system each was written for. */
  private readonly pxe = new Map<string, string>();
  private readonly profiles: Set<string>;
  private tokenTtlMs: number;
  /** Why `sync` fails, while it does. */
  private syncFailure: string | undefined;
  /** How many times `sync` ran. */
  syncs = 0;

  /** Builds an empty Cobbler with the given users and profiles. */
  constructor(private readonly options: CobblerModelOptions) {
    this.profiles = new Set(options.profiles);
    this.tokenTtlMs = options.tokenTtlMs;
  }

  /** The XML-RPC methods this simulation answers, by name. */
  readonly methods: Readonly<Record<string, (params: readonly unknown[]) => unknown>> = {
    login: (p) => this.login(arg(p, 0, 'login', 'login_user'), arg(p, 1, 'login', 'login_password')),
    logout: (p) => this.logout(arg(p, 0, 'logout', 'token')),
    token_check: (p) => this.tokenCheck(arg(p, 0, 'token_check', 'token')),
    version: () => COBBLER_VERSION,
    get_profiles: () => [...this.profiles].sort().map((name) => this.profileDict(name)),
    get_profile: (p) => {
      const name = arg(p, 0, 'get_profile', 'name');
      return typeof name === 'string' && this.profiles.has(name) ? this.profileDict(name) : '~';
    },
    // `get_systems(self, page=None, results_per_page=None, token=None, **rest)`: every system as cobblerd holds it
    // in memory (a handle's unsaved edits included, unsaved new systems not), in the order they were added; the
    // paging arguments and the token are ignored, a fourth positional argument is Python's TypeError.
    get_systems: (p) => {
      if (p.length > 3) {
        throw typeError(
          `get_systems() takes from 1 to 4 positional arguments but ${p.length + 1} were given`,
        );
      }
      return [...this.systemsByName.values()].map((s) => this.cachedDict(s));
    },
    get_system: (p) => {
      const system = this.systemsByName.get(String(arg(p, 0, 'get_system', 'name')));
      return system === undefined ? '~' : this.cachedDict(system);
    },
    find_system: (p) => this.findSystem(p[0], p[1]),
    get_system_handle: (p) => this.getSystemHandle(arg(p, 0, 'get_system_handle', 'name')),
    new_system: (p) => this.newSystem(arg(p, 0, 'new_system', 'token')),
    modify_system: (p) =>
      this.modifySystem(
        arg(p, 0, 'modify_system', 'object_id'),
        arg(p, 1, 'modify_system', 'attribute'),
        arg(p, 2, 'modify_system', 'arg'),
        arg(p, 3, 'modify_system', 'token'),
      ),
    save_system: (p) =>
      this.saveSystem(
        arg(p, 0, 'save_system', 'object_id'),
        arg(p, 1, 'save_system', 'token'),
        p[2] ?? 'bypass',
      ),
    remove_system: (p) =>
      this.removeSystem(arg(p, 0, 'remove_system', 'name'), arg(p, 1, 'remove_system', 'token')),
    sync: (p) => this.sync(arg(p, 0, 'sync', 'token')),
  };

  /** Changes the token lifetime (`auth_token_expiration`). */
  setTokenTtl(ms: number): void {
    this.tokenTtlMs = ms;
  }

  /** Forgets every login token, as a long idle time followed by someone's `token_check` does. */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** Makes `sync` fail with a CX carrying `reason` (e.g. `cannot find directory: /var/lib/tftpboot`), or work again. */
  setSyncFailure(reason: string | undefined): void {
    this.syncFailure = reason;
  }

  /**
   * A cobblerd restart: memory is read back from disk, so unsaved handle edits are lost, and tokens and unsaved new
   * objects (both held only in memory, `token_cache` and `object_cache`) are gone. TFTP files stay as written.
   */
  restart(): void {
    this.tokens.clear();
    this.objectCache.clear();
    this.systemsByName = new Map([...this.savedByName].map(([name, s]) => [name, copySystem(s)]));
  }

  /** Adds a profile (Cobbler needs a distro for it; the simulation does not model distros). */
  addProfile(name: string): void {
    this.profiles.add(name);
  }

  /** Inserts a saved system directly, bypassing the API (for test setup). */
  addSystem(seed: SystemSeed): void {
    const system = newSystem();
    system.name = seed.name;
    system.uid = randomBytes(16).toString('hex');
    system.profile = seed.profile;
    system.hostname = seed.hostname ?? '';
    system.netboot_enabled = seed.netboot_enabled ?? false;
    for (const [name, fields] of Object.entries(seed.interfaces ?? {})) {
      system.interfaces.set(name, { ...newInterface(), ...fields });
    }
    system.ctime = system.mtime = this.seconds();
    this.systemsByName.set(system.name, system);
    this.savedByName.set(system.name, copySystem(system));
    this.writePxeFiles(system);
  }

  /** Every system as saved on disk, as `get_system` would return it, sorted by name. */
  systems(): SystemDict[] {
    return [...this.savedByName.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => this.systemDict(s));
  }

  /** One system as it is in cobblerd's memory now (unsaved edits included, no dict cache), or undefined. */
  liveSystem(name: string): SystemDict | undefined {
    const system = this.systemsByName.get(name);
    return system === undefined ? undefined : this.systemDict(system);
  }

  /** The files under `pxelinux.cfg/` in the TFTP root, sorted. */
  pxeFiles(): string[] {
    return [...this.pxe.keys()].sort();
  }

  private seconds(): number {
    return this.options.now() / 1000;
  }

  private profileDict(name: string): Record<string, unknown> {
    return { name, distro: name, parent: '', comment: '', enable_menu: true, autoinstall: INHERIT };
  }

  private systemDict(system: SystemItem): SystemDict {
    return {
      name: system.name,
      uid: system.uid,
      profile: system.profile,
      image: system.image,
      parent: '',
      depth: 2,
      hostname: system.hostname,
      gateway: system.gateway,
      netboot_enabled: system.netboot_enabled,
      status: system.status,
      comment: system.comment,
      ctime: system.ctime,
      mtime: system.mtime,
      owners: INHERIT,
      autoinstall: INHERIT,
      kernel_options: INHERIT,
      name_servers: [],
      interfaces: Object.fromEntries([...system.interfaces].map(([name, i]) => [name, interfaceDict(i)])),
    };
  }

  /** `Item.to_dict` with `cache_enabled`: the cached dict when there is one, else a fresh one that is cached. */
  private cachedDict(system: SystemItem): SystemDict {
    system.cached ??= this.systemDict(system);
    return structuredClone(system.cached);
  }

  /** Sets a top-level field: `Item.__setattr__` clears the item's dict cache first. */
  private setField<K extends 'name' | 'profile' | 'image' | 'hostname' | 'gateway' | 'status' | 'comment'>(
    system: SystemItem,
    key: K,
    value: SystemItem[K],
  ): void {
    system.cached = undefined;
    system[key] = value;
  }

  /**
   * `__invalidate_expired_tokens` (remote.py). Upstream calls it only from `__validate_token`, which only
   * `token_check` calls, so a token expires only when some client calls `token_check` after its lifetime.
   */
  private invalidateExpired(): void {
    const now = this.options.now();
    for (const [token, entry] of this.tokens) {
      if (now > entry.at + this.tokenTtlMs) this.tokens.delete(token);
    }
    for (const [handle, entry] of this.objectCache) {
      if (now > entry.at + OBJECT_CACHE_TIMEOUT_MS) this.objectCache.delete(handle);
    }
  }

  /**
   * `check_access` → `get_user_from_token` (remote.py): the format check, then the lookup. Neither purges expired
   * tokens nor refreshes the token's time; only `token_check` (`__validate_token`) does both.
   */
  private checkAccess(token: unknown): string {
    if (typeof token !== 'string' || token.length !== 36) {
      throw valueError('"token" did not have the correct format or type!');
    }
    const entry = this.tokens.get(token);
    if (entry === undefined) throw cx(`invalid token: ${token}`);
    return entry.user;
  }

  private login(user: unknown, password: unknown): string {
    // Upstream: utils.die("login failed (%s)" % login_user), a CX.
    if (typeof user !== 'string' || user === '' || this.options.users[user] !== password) {
      throw cx(user === '' ? 'login failed' : `login failed (${String(user)})`);
    }
    const token = randomBytes(25).toString('base64');
    this.tokens.set(token, { at: this.options.now(), user });
    return token;
  }

  private logout(token: unknown): boolean {
    return typeof token === 'string' && this.tokens.delete(token);
  }

  /** `token_check` → `__validate_token`: purges every expired token, then refreshes this one's time. */
  private tokenCheck(token: unknown): boolean {
    this.invalidateExpired();
    const entry = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (entry === undefined) return false;
    entry.at = this.options.now();
    return true;
  }

  /** `__get_object`: a new object from the cache, or the live system behind `system::<name>` (or None). */
  private object(handle: unknown): SystemItem | null {
    if (typeof handle !== 'string') {
      throw attributeError(`'${pythonType(handle).slice(8, -2)}' object has no attribute 'startswith'`);
    }
    const id = handle;
    if (id.startsWith('___NEW___')) {
      const entry = this.objectCache.get(id);
      if (entry === undefined) throw keyError(id);
      return entry.system;
    }
    const separator = id.indexOf('::');
    if (separator === -1) throw valueError('not enough values to unpack (expected 2, got 1)');
    const kind = id.slice(0, separator);
    if (kind !== 'system') throw cx(`internal error, collection name is "${kind}"`);
    return this.systemsByName.get(id.slice(separator + 2)) ?? null;
  }

  private getSystemHandle(name: unknown): string {
    const found = typeof name === 'string' ? this.systemsByName.get(name) : undefined;
    if (found === undefined) throw cx(`internal error, unknown system name ${String(name)}`);
    return `system::${found.name}`;
  }

  private newSystem(token: unknown): string {
    this.checkAccess(token);
    const handle = `___NEW___system::${randomBytes(25).toString('base64')}`;
    this.objectCache.set(handle, { at: this.options.now(), system: newSystem() });
    return handle;
  }

  private modifySystem(handle: unknown, attribute: unknown, value: unknown, token: unknown): boolean {
    const system = this.object(handle);
    this.checkAccess(token);
    if (
      attribute === 'modify_interface' ||
      attribute === 'delete_interface' ||
      attribute === 'rename_interface'
    ) {
      if (system === null) throw attributeError(`'NoneType' object has no attribute '${attribute}'`);
      // These change NetworkInterface objects or the interfaces dict in place, so the dict cache stays.
      if (attribute === 'modify_interface') this.modifyInterface(system, value);
      else if (attribute === 'delete_interface') {
        if (typeof value === 'string') system.interfaces.delete(value);
        else throw typeError('The name of the interface must be of type str or dict');
      } else {
        const spec = (value ?? {}) as Record<string, unknown>;
        const from = typeof spec['interface'] === 'string' ? spec['interface'] : '';
        const to = typeof spec['rename_interface'] === 'string' ? spec['rename_interface'] : '';
        const iface = system.interfaces.get(from);
        if (iface === undefined) throw valueError(`Interface "${from}" does not exist`);
        if (system.interfaces.has(to)) throw valueError(`Interface "${to}" already exists`);
        system.interfaces.delete(from);
        system.interfaces.set(to, iface);
      }
      return true;
    }
    // `if hasattr(obj, attribute): setattr(obj, attribute, arg); return True` and otherwise False, with no fault.
    if (system === null || typeof attribute !== 'string') return false;
    switch (attribute) {
      case 'name': {
        const name = requireString(value, 'name must of be type str');
        if (!RE_OBJECT_NAME.test(name)) throw valueError(`Invalid characters in name: '${name}'`);
        this.setField(system, 'name', name);
        return true;
      }
      case 'hostname':
        this.setField(
          system,
          'hostname',
          requireString(value, 'Field hostname of object system needs to be of type str!'),
        );
        return true;
      case 'profile':
        this.setProfile(system, value);
        return true;
      case 'image': {
        const image = requireString(value, 'The name of an image must be of type str.');
        if (!['delete', 'None', '~', ''].includes(image)) throw cx(`invalid image name (${image})`);
        this.setField(system, 'image', '');
        return true;
      }
      case 'netboot_enabled':
        system.cached = undefined;
        system.netboot_enabled = inputBoolean(value);
        return true;
      case 'gateway':
        this.setField(system, 'gateway', validateIpv4Address(value));
        return true;
      case 'status':
        this.setField(
          system,
          'status',
          requireString(value, 'Field status of object system needs to be of type str!'),
        );
        return true;
      case 'comment':
        this.setField(
          system,
          'comment',
          requireString(value, 'Field comment of object system needs to be of type str!'),
        );
        return true;
      default:
        return false;
    }
  }

  private setProfile(system: SystemItem, value: unknown): void {
    const name = requireString(value, 'The name of a profile needs to be of type str.');
    if (['delete', 'None', '~', ''].includes(name)) {
      this.setField(system, 'profile', '');
      return;
    }
    this.setField(system, 'image', '');
    if (!this.profiles.has(name)) throw valueError(`Profile with the name "${name}" is not existing`);
    this.setField(system, 'profile', name);
  }

  /** `System.modify_interface`: keys like `mac_address-eth0`; the field is the part before the first `-`. */
  private modifyInterface(system: SystemItem, values: unknown): void {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw attributeError(`'${pythonType(values).slice(8, -2)}' object has no attribute 'keys'`);
    }
    for (const [key, value] of Object.entries(values)) {
      const dash = key.indexOf('-');
      if (dash === -1) throw valueError('not enough values to unpack (expected 2, got 1)');
      const name = key.slice(dash + 1);
      let iface = system.interfaces.get(name);
      if (iface === undefined) {
        iface = newInterface();
        system.interfaces.set(name, iface);
      }
      this.setInterfaceField(iface, key.slice(0, dash).replaceAll('_', ''), value);
    }
  }

  /**
   * The system collection's index of one interface field (`Systems.indexes`): value → system name, over the
   * systems in memory, so an unsaved handle edit is indexed at once (`update_interface_index_value`).
   */
  private index(key: IndexedKey): Map<string, string> {
    const index = new Map<string, string>();
    for (const system of this.systemsByName.values()) {
      for (const iface of system.interfaces.values())
        if (iface[key] !== '') index.set(iface[key], system.name);
    }
    return index;
  }

  /**
   * The duplicate check of the `mac_address`, `ip_address` and `dns_name` setters (items/system.py): the system
   * holding `wanted` in the index, unless `iface` is one of its interfaces.
   */
  private duplicateOwner(iface: NetworkInterface, key: IndexedKey, wanted: string): string | undefined {
    const owner = this.index(key).get(wanted);
    const system = owner === undefined ? undefined : this.systemsByName.get(owner);
    if (system === undefined || [...system.interfaces.values()].includes(iface)) return undefined;
    return system.name;
  }

  /**
   * The interface setters. Each returns early when the value equals the current one (before validation, as
   * upstream compares the raw argument), then refuses a duplicate with `<what> duplicate found "<value>". Object
   * with the conflict has the name "<name>"` (`NetworkInterface.mac_address`, `.ip_address`, `.dns_name`).
   */
  private setInterfaceField(iface: NetworkInterface, field: string, value: unknown): void {
    const refuseDuplicate = (key: IndexedKey, what: string, wanted: string): void => {
      const owner = wanted === '' ? undefined : this.duplicateOwner(iface, key, wanted);
      if (owner !== undefined) {
        throw valueError(
          `${what} duplicate found "${wanted}". Object with the conflict has the name "${owner}"`,
        );
      }
    };
    switch (field) {
      case 'macaddress': {
        if (iface.mac_address === value) return;
        let mac = validateMac(value);
        if (mac === 'random')
          mac = `aa:bb:cc:${randomBytes(3)
            .toString('hex')
            .replace(/(..)(?!$)/g, '$1:')}`;
        refuseDuplicate('mac_address', 'MAC address', mac);
        iface.mac_address = mac;
        return;
      }
      case 'ipaddress': {
        if (iface.ip_address === value) return;
        const ip = validateIpv4Address(value);
        refuseDuplicate('ip_address', 'IP address', ip);
        iface.ip_address = ip;
        return;
      }
      case 'dnsname': {
        if (iface.dns_name === value) return;
        const name = validateHostname(value);
        refuseDuplicate('dns_name', 'DNS name', name);
        iface.dns_name = name;
        return;
      }
      case 'netmask':
        iface.netmask = validateIpv4Netmask(value);
        return;
      case 'ifgateway':
        iface.if_gateway = validateIpv4Address(value);
        return;
      case 'static':
        iface.static = inputBoolean(value);
        return;
      case 'management':
        iface.management = inputBoolean(value);
        return;
      case 'dhcptag':
        iface.dhcp_tag = requireString(
          value,
          'Field dhcp_tag of object NetworkInterface needs to be of type str!',
        );
        return;
      case 'mtu':
        iface.mtu = requireString(value, 'Field mtu of object NetworkInterface needs to be type str!');
        return;
      default:
        // Upstream ignores fields it has no branch for.
        return;
    }
  }

  /**
   * `save_item` → `Collection.add`: validate, refuse a duplicate name in "new" mode, stamp (setting `mtime`
   * clears the dict cache), store in memory, serialize to disk, then `sync_systems` writes the system's PXE files.
   */
  private saveSystem(handle: unknown, token: unknown, editmode: unknown): boolean {
    const system = this.object(handle);
    this.checkAccess(token);
    if (system === null) throw typeError('Unable to add a None object');
    if (system.name === '') throw cx('name is required');
    if (system.profile === '' && system.image === '') {
      throw cx(`Error with system ${system.name} - profile or image is required`);
    }
    if (system.uid === '') system.uid = randomBytes(16).toString('hex');
    const now = this.seconds();
    if (system.ctime === 0) system.ctime = now;
    system.mtime = now;
    system.cached = undefined;
    if (editmode === 'new' && this.systemsByName.has(system.name)) {
      throw cx("An object already exists with that name. Try 'edit'?");
    }
    this.systemsByName.set(system.name, system);
    this.savedByName.set(system.name, copySystem(system));
    this.writePxeFiles(system);
    return true;
  }

  /**
   * `tftpgen.write_all_system_files`: one `pxelinux.cfg/` file per interface, named after its MAC. It never
   * removes the file of a MAC the system no longer has; only a full sync (`clean_trees`) does.
   */
  private writePxeFiles(system: SystemItem): void {
    for (const iface of system.interfaces.values()) this.pxe.set(pxeFileName(system, iface), system.name);
  }

  /**
   * `remove_item`: a system that is already gone is not an error (`api.remove_item` returns early); otherwise
   * `remove_single_system` deletes the PXE files of its current interfaces.
   */
  private removeSystem(name: unknown, token: unknown): boolean {
    this.checkAccess(token);
    const system = typeof name === 'string' ? this.systemsByName.get(name) : undefined;
    if (system === undefined) return true;
    for (const iface of system.interfaces.values()) this.pxe.delete(pxeFileName(system, iface));
    this.systemsByName.delete(system.name);
    this.savedByName.delete(system.name);
    return true;
  }

  /**
   * `sync` → `CobblerSync.run` (actions/sync.py): dies first when it cannot work (`cannot find directory: ...`),
   * else `clean_trees` empties `pxelinux.cfg/` and every system in memory gets its files written again.
   */
  private sync(token: unknown): boolean {
    this.checkAccess(token);
    if (this.syncFailure !== undefined) throw cx(this.syncFailure);
    this.syncs++;
    this.pxe.clear();
    for (const system of this.systemsByName.values()) this.writePxeFiles(system);
    return true;
  }

  /**
   * `find_system(criteria, expand)` → `Collection.find` (cobbler_collections/collection.py): MAC, IP, IPv6 and DNS
   * name without glob characters are looked up exactly in the indexes; the other keys are matched by
   * `Item.find_match` against the (cached) dicts; an unknown field matches nothing. Sorted by name.
   */
  private findSystem(criteria: unknown, expand: unknown): unknown[] {
    const wanted = new Map(
      Object.entries((criteria ?? {}) as Record<string, unknown>).map(
        ([key, value]) => [SEARCH_REKEY[key] ?? key, String(value)] as const,
      ),
    );
    // `find_items` pops "name" and `Collection.find` puts it back only when it is not empty.
    if (wanted.get('name') === '') wanted.delete('name');
    if (wanted.size === 0) throw valueError('calling find with no arguments');
    // `find_by_indexes`: an indexed key is consumed whether or not its value is found.
    let matches: SystemItem[] | undefined;
    for (const key of INDEXED_KEYS) {
      const value = wanted.get(key);
      if (value === undefined || value.startsWith('~') || hasGlob(value)) continue;
      const owner = this.index(key).get(value);
      const system = owner === undefined ? undefined : this.systemsByName.get(owner);
      if (owner !== undefined) matches ??= [];
      if (system !== undefined) matches?.push(system);
      wanted.delete(key);
    }
    const found = matches ?? [];
    if (wanted.size > 0) {
      for (const system of this.systemsByName.values()) {
        if (this.findMatch(system, wanted)) found.push(system);
      }
    }
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return expand === true ? found.map((s) => this.cachedDict(s)) : found.map((s) => s.name);
  }

  /** `Item.find_match`: every key matches; a value starting with `~` negates. */
  private findMatch(system: SystemItem, wanted: ReadonlyMap<string, string>): boolean {
    const data = this.cachedDict(system) as Record<string, unknown>;
    for (const [key, value] of wanted) {
      const negate = value.startsWith('~');
      const matched = this.findMatchKey(data, key, negate ? value.slice(1) : value);
      if (matched === negate) return false;
    }
    return true;
  }

  /** `Item.find_match_single_key`. */
  private findMatchKey(data: Record<string, unknown>, key: string, value: string): boolean {
    if (INTERFACE_SEARCH_KEYS.has(key)) {
      const interfaces = data['interfaces'] as Record<string, Record<string, unknown>>;
      for (const [name, iface] of Object.entries(interfaces)) {
        if (value === name) return true;
        if (key in iface && findCompare(iface[key], value)) return true;
      }
    }
    // Upstream's `raise CX("searching for field that does not exist")` is commented out: no match, no fault.
    if (!(key in data)) return false;
    return findCompare(value, data[key]);
  }
}

/** A positional argument, or Python's `TypeError` for a missing one. */
function arg(params: readonly unknown[], index: number, method: string, name: string): unknown {
  if (index >= params.length) {
    throw typeError(`${method}() missing 1 required positional argument: '${name}'`);
  }
  return params[index];
}
