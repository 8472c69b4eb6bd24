/**
 * The state and the XML-RPC methods of a simulated Cobbler 3.3, as `cobbler/remote.py`, `cobbler/items/system.py`,
 * `cobbler/validate.py` and `cobbler/cobbler_collections/collection.py` behave upstream: read methods need no token,
 * write methods check the token first, `get_system` answers `"~"` for a missing system, new objects live in an
 * object cache under a `___NEW___system::...` handle until saved, a handle from `get_system_handle` edits the live
 * system, duplicate MACs, IPs and DNS names are refused when an interface field is set, an unknown profile is
 * refused when the profile is set, and a system without a profile is refused on save.
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
const RE_IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
// The formats netaddr's valid_mac accepts with its default dialects.
const RE_MAC = [
  /^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}$/,
  /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/,
  /^[0-9a-f]{12}$/,
];
const INTERFACE_FIELDS = new Set([
  'mac_address',
  'ip_address',
  'netmask',
  'dns_name',
  'if_gateway',
  'static',
  'management',
  'dhcp_tag',
  'virt_bridge',
  'interface_type',
  'interface_master',
  'mtu',
]);
// `Collection.__rekey`: names the command line uses, mapped to the fields they mean.
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
    interface_type: 'NA',
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
    // A new System always has the interface "default"; interfaces named in modify_interface come beside it.
    interfaces: new Map([['default', newInterface()]]),
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

function ipv4Value(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** netaddr's `IPAddress.is_netmask`: the inverted value plus one is a power of two. */
function isNetmask(address: string): boolean {
  const inverted = 0xffffffff - ipv4Value(address) + 1;
  return (inverted & (inverted - 1)) === 0;
}

/** `cobbler.validate.ipv4_address`. */
function validateIpv4Address(value: unknown): string {
  const address = requireString(value, 'Invalid input, addr must be a string').trim();
  if (address === '') return address;
  if (!RE_IPV4.test(address)) throw addressValueError(`Invalid IPv4 address format (${address})`);
  if (isNetmask(address)) throw netmaskValueError(`Invalid IPv4 host address (${address})`);
  return address;
}

/** `cobbler.validate.ipv4_netmask`. */
function validateIpv4Netmask(value: unknown): string {
  const address = requireString(value, 'Invalid input, addr must be a string').trim();
  if (address === '') return address;
  if (!RE_IPV4.test(address)) throw addressValueError(`Invalid IPv4 address format (${address})`);
  if (!isNetmask(address)) throw netmaskValueError(`Invalid IPv4 netmask (${address})`);
  return address;
}

/** `cobbler.validate.hostname`. */
function validateHostname(value: unknown): string {
  const name = requireString(value, 'Invalid input, dnsname must be a string').trim();
  if (name === '') return name;
  if (!RE_HOSTNAME.test(name)) throw valueError(`Invalid hostname format (${name})`);
  return name;
}

/** `fnmatch.fnmatchcase`: `*`, `?` and `[...]` globs. */
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

function interfaceDict(iface: NetworkInterface): Record<string, unknown> {
  return structuredClone({ ...iface });
}

/** The simulated Cobbler: state plus one method per XML-RPC call it answers. */
export class CobblerModel {
  /** The saved systems by name: Cobbler's system collection. */
  private readonly systemsByName = new Map<string, SystemItem>();
  /** Unsaved objects by handle, with when they were made. */
  private readonly objectCache = new Map<string, { readonly at: number; readonly system: SystemItem }>();
  /** Login tokens with when they were made or last checked, and for whom. */
  private readonly tokens = new Map<string, { at: number; readonly user: string }>();
  private readonly profiles: Set<string>;
  private tokenTtlMs: number;
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
    version: () => 3.3,
    get_profiles: () => [...this.profiles].sort().map((name) => this.profileDict(name)),
    get_profile: (p) => {
      const name = arg(p, 0, 'get_profile', 'name');
      return typeof name === 'string' && this.profiles.has(name) ? this.profileDict(name) : '~';
    },
    get_systems: () => [...this.systemsByName.values()].map((s) => this.systemDict(s)),
    get_system: (p) => {
      const system = this.systemsByName.get(String(arg(p, 0, 'get_system', 'name')));
      return system === undefined ? '~' : this.systemDict(system);
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

  /** Changes the token lifetime for tokens checked from now on. */
  setTokenTtl(ms: number): void {
    this.tokenTtlMs = ms;
  }

  /** Forgets every login token, as a Cobbler restart or a long idle time does. */
  expireTokens(): void {
    this.tokens.clear();
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
  }

  /** Every saved system as `get_system` would return it, sorted by name. */
  systems(): SystemDict[] {
    return [...this.systemsByName.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => this.systemDict(s));
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

  /** Drops expired tokens and unsaved objects, as `__invalidate_expired_tokens` does. */
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
   * `get_user_from_token` as `check_access` uses it. Upstream purges expired tokens only in `token_check`; the
   * simulation purges on every check, so an expired token fails at once rather than whenever someone next calls
   * `token_check` (the stricter of the two, which is what a client must handle anyway).
   */
  private checkAccess(token: unknown): string {
    if (typeof token !== 'string' || token.length !== 36) {
      throw valueError('"token" did not have the correct format or type!');
    }
    this.invalidateExpired();
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
        system.name = name;
        return true;
      }
      case 'hostname':
        system.hostname = requireString(value, 'Field hostname of object system needs to be of type str!');
        return true;
      case 'profile':
        this.setProfile(system, value);
        return true;
      case 'image': {
        const image = requireString(value, 'The name of an image must be of type str.');
        if (!['delete', 'None', '~', ''].includes(image)) throw cx(`invalid image name (${image})`);
        system.image = '';
        return true;
      }
      case 'netboot_enabled':
        system.netboot_enabled = inputBoolean(value);
        return true;
      case 'gateway':
        system.gateway = validateIpv4Address(value);
        return true;
      case 'status':
        system.status = requireString(value, 'Field status of object system needs to be of type str!');
        return true;
      case 'comment':
        system.comment = requireString(value, 'Field comment of object system needs to be of type str!');
        return true;
      default:
        return false;
    }
  }

  private setProfile(system: SystemItem, value: unknown): void {
    const name = requireString(value, 'The name of a profile needs to be of type str.');
    if (['delete', 'None', '~', ''].includes(name)) {
      system.profile = '';
      return;
    }
    system.image = '';
    if (!this.profiles.has(name)) throw valueError(`Profile with the name "${name}" is not existing`);
    system.profile = name;
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

  /** The interface setters, with Cobbler's duplicate checks against saved systems. */
  private setInterfaceField(iface: NetworkInterface, field: string, value: unknown): void {
    const duplicate = (key: 'mac_address' | 'ip_address' | 'dns_name', wanted: string): boolean =>
      [...this.systemsByName.values()].some(
        (other) =>
          ![...other.interfaces.values()].includes(iface) &&
          [...other.interfaces.values()].some((i) => i[key] === wanted),
      );
    switch (field) {
      case 'macaddress': {
        let mac = requireString(value, 'Invalid input, mac must be a string').toLowerCase().trim();
        if (mac === 'random')
          mac = `aa:bb:cc:${randomBytes(3)
            .toString('hex')
            .replace(/(..)(?!$)/g, '$1:')}`;
        else if (mac !== '' && !RE_MAC.some((re) => re.test(mac))) {
          throw valueError(`Invalid mac address format (${mac})`);
        }
        if (mac !== '' && duplicate('mac_address', mac))
          throw valueError(`MAC address duplicate found: ${mac}`);
        iface.mac_address = mac;
        return;
      }
      case 'ipaddress': {
        const ip = validateIpv4Address(value);
        if (ip !== '' && duplicate('ip_address', ip)) throw valueError(`IP address duplicate found: ${ip}`);
        iface.ip_address = ip;
        return;
      }
      case 'dnsname': {
        const name = validateHostname(value);
        if (name !== '' && duplicate('dns_name', name)) throw valueError(`DNS duplicate found: ${name}`);
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

  /** `save_item` → `Collection.add`: validate, refuse a duplicate name in "new" mode, store and stamp. */
  private saveSystem(handle: unknown, token: unknown, editmode: unknown): boolean {
    const system = this.object(handle);
    this.checkAccess(token);
    if (system === null) throw typeError('Unable to add a None object');
    if (system.name === '') throw cx('name is required');
    if (system.profile === '' && system.image === '') {
      throw cx(`Error with system ${system.name} - profile or image is required`);
    }
    if (editmode === 'new' && this.systemsByName.has(system.name)) {
      throw cx("An object already exists with that name. Try 'edit'?");
    }
    if (system.uid === '') system.uid = randomBytes(16).toString('hex');
    const now = this.seconds();
    if (system.ctime === 0) system.ctime = now;
    system.mtime = now;
    this.systemsByName.set(system.name, system);
    return true;
  }

  /** `remove_item`: a system that is already gone is not an error (`api.remove_item` returns early). */
  private removeSystem(name: unknown, token: unknown): boolean {
    this.checkAccess(token);
    if (typeof name === 'string') this.systemsByName.delete(name);
    return true;
  }

  private sync(token: unknown): boolean {
    this.checkAccess(token);
    this.syncs++;
    return true;
  }

  /** `find_items("system", criteria, expand=...)`: names, or whole dicts with `expand`, sorted by name. */
  private findSystem(criteria: unknown, expand: unknown): unknown[] {
    const wanted = Object.entries((criteria ?? {}) as Record<string, unknown>).map(
      ([key, value]) => [SEARCH_REKEY[key] ?? key, value] as const,
    );
    const matches = [...this.systemsByName.values()]
      .filter((system) => wanted.every(([key, value]) => this.matches(system, key, value)))
      .sort((a, b) => a.name.localeCompare(b.name));
    return expand === true ? matches.map((s) => this.systemDict(s)) : matches.map((s) => s.name);
  }

  private matches(system: SystemItem, key: string, value: unknown): boolean {
    const text = String(value);
    if (INTERFACE_FIELDS.has(key)) {
      return [...system.interfaces.values()].some((i) =>
        fnmatch(String(i[key as keyof NetworkInterface]), text),
      );
    }
    switch (key) {
      case 'netboot_enabled':
        return inputBoolean(value) === system.netboot_enabled;
      case 'name':
      case 'profile':
      case 'hostname':
      case 'gateway':
      case 'status':
      case 'image':
        return fnmatch(system[key], text);
      default:
        throw cx(`searching for field that does not exist: ${key}`);
    }
  }
}

/** A positional argument, or Python's `TypeError` for a missing one. */
function arg(params: readonly unknown[], index: number, method: string, name: string): unknown {
  if (index >= params.length) {
    throw typeError(`${method}() missing 1 required positional argument: '${name}'`);
  }
  return params[index];
}
