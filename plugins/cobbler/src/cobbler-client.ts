/**
 * A small client of Cobbler 3.3's XML-RPC API (`cobbler/remote.py`) over the `xmlrpc` library. It logs in lazily,
 * keeps the token, logs in again once when Cobbler says the token is invalid or expired, bounds every call with a
 * timeout, and translates foreign errors at this edge: a refused connection, a timeout or an HTTP 5xx becomes a
 * retryable `BackendUnavailableError`; an XML-RPC fault becomes a `BackendError` carrying the fault text. The API
 * has two addresses: `/cobbler_api` through Apache, and `/` or `/RPC2` on cobblerd's own port (25151); when the
 * configured one answers 404, the client tries the others on the same host and port and says which one answered.
 */
import xmlrpc from 'xmlrpc';
import type { Logger } from '@consortium/plugin-api';
import { BackendError, BackendUnavailableError, CancelledError, InputError } from '@consortium/plugin-api';

/** Where and as whom to reach Cobbler. */
export interface CobblerClientOptions {
  /** The XML-RPC endpoint: `http(s)://host/cobbler_api` (Apache), or `http://host:25151/` or `/RPC2` (cobblerd). */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** The longest one call may take. */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

/** One network interface of a Cobbler system, as the plugin reads it. */
export interface CobblerInterface {
  readonly macAddress: string;
  readonly ipAddress: string;
  readonly netmask: string;
  readonly dnsName: string;
}

/** A Cobbler system, as the plugin reads it from `get_system` or `get_systems`. */
export interface CobblerSystem {
  readonly name: string;
  readonly profile: string;
  readonly hostname: string;
  readonly gateway: string;
  readonly netbootEnabled: boolean;
  readonly interfaces: Readonly<Record<string, CobblerInterface>>;
}

/** How `save_system` persists: `new` refuses an existing name, `bypass` overwrites (for edits). */
export type SaveMode = 'new' | 'bypass';

type ClientOptions = Exclude<Parameters<typeof xmlrpc.createClient>[0], string>;

/** Errors with these codes mean the network or the server is down for now. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** Faults that mean the token is unknown (expired, or Cobbler restarted) rather than that the call is wrong. */
const TOKEN_FAULTS = ['invalid token', '"token" did not have the correct format'];

/** Where Cobbler answers XML-RPC: Apache's proxy path, then cobblerd's own `rpc_paths` (`/RPC2`, `/`). */
export const COBBLER_API_PATHS: readonly string[] = ['/cobbler_api', '/RPC2', '/'];

/** Which of the two ways in a path is, for messages. */
function describePath(path: string): string {
  if (path === '/cobbler_api') return 'through Apache at /cobbler_api';
  if (path === '/' || path === '/RPC2') return `cobblerd itself at ${path}`;
  return `at ${path}`;
}

/** Where a call goes. */
interface Target {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/** Upstream `remove_item` returns early for a missing system; older releases raise this instead. */
const ALREADY_GONE = 'cannot delete an object that does not exist';

interface ForeignError {
  readonly message?: unknown;
  readonly code?: unknown;
  readonly faultCode?: unknown;
  readonly faultString?: unknown;
  readonly res?: { readonly statusCode?: number };
}

/** Whether `error` is this client's translation of an HTTP 404. */
function isNotFound(error: unknown): boolean {
  return error instanceof BackendError && error.details['status'] === 404;
}

/** The fault text of a `BackendError` this client raised for an XML-RPC fault, if it is one. */
export function faultOf(error: unknown): string | undefined {
  if (!(error instanceof BackendError)) return undefined;
  const fault = error.details['faultString'];
  return typeof fault === 'string' ? fault : undefined;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function readInterface(value: unknown): CobblerInterface {
  const fields = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    macAddress: text(fields['mac_address']).toLowerCase(),
    ipAddress: text(fields['ip_address']),
    netmask: text(fields['netmask']),
    dnsName: text(fields['dns_name']),
  };
}

/** A system from the dict `get_system` and `get_systems` answer with. */
function readSystem(fields: Record<string, unknown>): CobblerSystem {
  const interfaces = (fields['interfaces'] ?? {}) as Record<string, unknown>;
  const netboot = fields['netboot_enabled'];
  return {
    name: text(fields['name']),
    profile: text(fields['profile']),
    hostname: text(fields['hostname']),
    gateway: text(fields['gateway']),
    netbootEnabled: netboot === true || String(netboot).toLowerCase() === 'true',
    interfaces: Object.fromEntries(Object.entries(interfaces).map(([k, v]) => [k, readInterface(v)])),
  };
}

/** A client of one Cobbler server; safe to share between concurrent tasks. */
export class CobblerClient {
  private target: Target;
  /** `scheme://host:port`, for messages. */
  private readonly origin: string;
  /** Whether an address has answered XML-RPC yet (it is then announced, and used from then on). */
  private located = false;
  private pendingLocate: Promise<void> | undefined;
  private token: string | undefined;
  private pendingLogin: Promise<string> | undefined;

  /** Makes a client; throws `InputError` for a URL that is not http(s). */
  constructor(private readonly options: CobblerClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new InputError(`the Cobbler url "${options.url}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InputError(`the Cobbler url must start with http:// or https://, not ${url.protocol}`);
    }
    const secure = url.protocol === 'https:';
    this.target = {
      secure,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: url.pathname + url.search,
    };
    this.origin = `${url.protocol}//${url.host}`;
  }

  /** The endpoint that answers (the configured one until another was found), without credentials or query. */
  get endpoint(): string {
    return `${this.origin}${this.target.path.split('?')[0] ?? ''}`;
  }

  /** Reads a system by name; null when Cobbler answers `"~"` (its XML-RPC spelling of None). */
  async getSystem(name: string, signal: AbortSignal): Promise<CobblerSystem | null> {
    const value = await this.call('get_system', [name], signal);
    if (value === '~' || value === null || value === undefined) return null;
    if (typeof value !== 'object') throw this.unexpected('get_system', value);
    return readSystem(value as Record<string, unknown>);
  }

  /** Every system, read in one call (`get_systems`, as cobblerd holds them in memory; read only, no token). */
  async systems(signal: AbortSignal): Promise<CobblerSystem[]> {
    const value = await this.call('get_systems', [], signal);
    if (!Array.isArray(value)) throw this.unexpected('get_systems', value);
    return value.map((item) => {
      if (typeof item !== 'object' || item === null) throw this.unexpected('get_systems', item);
      return readSystem(item as Record<string, unknown>);
    });
  }

  /** Names of the systems matching `criteria` (`{mac_address: ...}`, `{ip_address: ...}`, globs on names). */
  async findSystems(criteria: Readonly<Record<string, string>>, signal: AbortSignal): Promise<string[]> {
    const value = await this.call('find_system', [criteria], signal);
    if (!Array.isArray(value)) throw this.unexpected('find_system', value);
    return value.map((name) => String(name));
  }

  /** Names of every profile. */
  async profiles(signal: AbortSignal): Promise<string[]> {
    const value = await this.call('get_profiles', [], signal);
    if (!Array.isArray(value)) throw this.unexpected('get_profiles', value);
    return value.map((p) => text((p as Record<string, unknown> | null)?.['name']));
  }

  /** A handle of a new, unsaved system. */
  async newSystem(signal: AbortSignal): Promise<string> {
    const handle = await this.withToken('new_system', (token) => [token], signal);
    if (typeof handle !== 'string') throw this.unexpected('new_system', handle);
    return handle;
  }

  /** A handle of an existing system, for edits. */
  async systemHandle(name: string, signal: AbortSignal): Promise<string> {
    const handle = await this.withToken('get_system_handle', (token) => [name, token], signal);
    if (typeof handle !== 'string') throw this.unexpected('get_system_handle', handle);
    return handle;
  }

  /**
   * Sets one attribute through a handle; `modify_interface` takes `{"mac_address-eth0": ...}`. Cobbler answers
   * false, without a fault, for an attribute it does not have; that throws `BackendError`.
   */
  async modifySystem(handle: string, attribute: string, value: unknown, signal: AbortSignal): Promise<void> {
    const done = await this.withToken('modify_system', (token) => [handle, attribute, value, token], signal);
    if (done !== true) {
      throw new BackendError(
        `Cobbler at ${this.endpoint} does not know the system attribute "${attribute}"`,
        {
          details: { method: 'modify_system', attribute },
        },
      );
    }
  }

  /** Saves a system handle. */
  async saveSystem(handle: string, mode: SaveMode, signal: AbortSignal): Promise<void> {
    await this.withToken('save_system', (token) => [handle, token, mode], signal);
  }

  /** Removes a system; one that is already gone counts as removed. */
  async removeSystem(name: string, signal: AbortSignal): Promise<void> {
    try {
      await this.withToken('remove_system', (token) => [name, token], signal);
    } catch (error) {
      if (faultOf(error)?.includes(ALREADY_GONE) !== true) throw error;
    }
  }

  /** Runs a full `cobbler sync` (DHCP, DNS, TFTP files). */
  async sync(signal: AbortSignal): Promise<void> {
    await this.withToken('sync', (token) => [token], signal);
  }

  /** Calls a method that needs a token: logs in if needed, and once more if Cobbler refuses the token. */
  private async withToken(
    method: string,
    params: (token: string) => readonly unknown[],
    signal: AbortSignal,
  ): Promise<unknown> {
    const token = await this.login(signal);
    try {
      return await this.call(method, params(token), signal);
    } catch (error) {
      const fault = faultOf(error);
      if (fault === undefined || !TOKEN_FAULTS.some((t) => fault.includes(t))) throw error;
      this.options.logger.info('Cobbler no longer accepts the login token; logging in again', {
        endpoint: this.endpoint,
        method,
      });
      if (this.token === token) this.token = undefined;
      return this.call(method, params(await this.login(signal)), signal);
    }
  }

  /** The cached token, or one login shared by every caller waiting for it. */
  private login(signal: AbortSignal): Promise<string> {
    if (this.token !== undefined) return Promise.resolve(this.token);
    this.pendingLogin ??= (async () => {
      try {
        const token = await this.call('login', [this.options.username, this.options.password], signal);
        if (typeof token !== 'string') throw this.unexpected('login', token);
        this.token = token;
        this.options.logger.debug('logged in to Cobbler', {
          endpoint: this.endpoint,
          username: this.options.username,
        });
        return token;
      } catch (error) {
        const fault = faultOf(error);
        if (fault === undefined) throw error;
        throw new BackendError(
          `Cobbler at ${this.endpoint} refused the login of user "${this.options.username}": ${fault}`,
          { details: { method: 'login', faultString: fault } },
        );
      } finally {
        this.pendingLogin = undefined;
      }
    })();
    return this.pendingLogin;
  }

  /**
   * One XML-RPC call to the endpoint that answers. The first answer is announced (which form answered); a 404
   * before any answer makes the client look for the other form on the same host and port, once.
   */
  private async call(method: string, params: readonly unknown[], signal: AbortSignal): Promise<unknown> {
    const target = this.target;
    try {
      const value = await this.callAt(target, method, params, signal);
      this.answered(target);
      return value;
    } catch (error) {
      if (faultOf(error) !== undefined) this.answered(target);
      if (this.located || !isNotFound(error)) throw error;
      if (this.target === target) await this.locate(error, signal);
      return this.call(method, params, signal);
    }
  }

  /** Notes, and logs once, that `target` answers XML-RPC. */
  private answered(target: Target): void {
    if (this.located) return;
    this.located = true;
    this.options.logger.info(`Cobbler answers XML-RPC ${describePath(target.path)}`, {
      endpoint: this.endpoint,
    });
  }

  /**
   * After the configured address answered 404: tries the other forms on the same host and port (`/cobbler_api`,
   * `/RPC2`, `/`) with `version`, shared by concurrent callers; switches to the first that answers and says so, or
   * throws a `BackendError` naming every address tried.
   */
  private locate(notFound: unknown, signal: AbortSignal): Promise<void> {
    this.pendingLocate ??= (async () => {
      const configured = this.target;
      const others = COBBLER_API_PATHS.filter((p) => p !== configured.path);
      try {
        for (const path of others) {
          const candidate = { ...configured, path };
          try {
            await this.callAt(candidate, 'version', [], signal);
          } catch (error) {
            if (error instanceof CancelledError) throw error;
            continue;
          }
          this.target = candidate;
          this.options.logger.warn(
            `Cobbler has no XML-RPC API at ${this.origin}${configured.path} (HTTP 404) but answers ${describePath(path)}; set url to ${this.endpoint}`,
            { endpoint: this.endpoint },
          );
          this.located = true;
          return;
        }
        throw new BackendError(
          `Cobbler at ${this.origin}${configured.path} has no XML-RPC API (HTTP 404), nor at ${others.join(', ')}; ` +
            `point url at Apache's /cobbler_api or at cobblerd's / or /RPC2 (port 25151)`,
          { cause: notFound, details: { status: 404, tried: [configured.path, ...others] } },
        );
      } finally {
        this.pendingLocate = undefined;
      }
    })();
    return this.pendingLocate;
  }

  /** One XML-RPC call to `target`, bounded by the timeout and the caller's signal, with foreign errors translated. */
  private callAt(
    target: Target,
    method: string,
    params: readonly unknown[],
    signal: AbortSignal,
  ): Promise<unknown> {
    if (signal.aborted) return Promise.reject(this.cancelled(method));
    return new Promise((resolve, reject) => {
      const abort = new AbortController();
      let settled = false;
      const settle = (finish: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        finish();
      };
      const timer = setTimeout(() => {
        abort.abort();
        settle(() => {
          reject(
            new BackendUnavailableError(
              `Cobbler at ${this.endpoint} did not answer ${method} within ${this.options.timeoutMs} ms`,
              { details: { method } },
            ),
          );
        });
      }, this.options.timeoutMs);
      const onAbort = (): void => {
        abort.abort();
        settle(() => {
          reject(this.cancelled(method));
        });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const clientOptions: ClientOptions & { signal: AbortSignal } = {
        host: target.host,
        port: target.port,
        path: target.path,
        signal: abort.signal,
      };
      try {
        const client = target.secure
          ? xmlrpc.createSecureClient(clientOptions)
          : xmlrpc.createClient(clientOptions);
        client.methodCall(method, [...params], (error: unknown, value: unknown) => {
          settle(() => {
            if (error === null || error === undefined) resolve(value);
            else reject(this.translate(method, error));
          });
        });
      } catch (error) {
        settle(() => {
          reject(this.translate(method, error));
        });
      }
    });
  }

  /** Turns whatever the `xmlrpc` library or Node raised into a Consortium error. */
  private translate(method: string, error: unknown): Error {
    const foreign = (typeof error === 'object' && error !== null ? error : {}) as ForeignError;
    const message = typeof foreign.message === 'string' ? foreign.message : String(error);
    if (typeof foreign.faultString === 'string' || foreign.faultCode !== undefined) {
      // Cobbler quotes the refused token in the fault; a token is a credential, so it never leaves this client.
      const fault = text(foreign.faultString).replace(/invalid token: [^'"]*/, 'invalid token: <redacted>');
      return new BackendError(`Cobbler fault in ${method}: ${fault}`, {
        details: { method, faultCode: foreign.faultCode ?? null, faultString: fault },
      });
    }
    const status = foreign.res?.statusCode;
    if (status !== undefined && status >= 500) {
      return new BackendUnavailableError(
        `Cobbler at ${this.endpoint} answered ${method} with HTTP ${status}`,
        {
          cause: error,
          details: { method, status },
        },
      );
    }
    if (status === 404) {
      return new BackendError(`Cobbler at ${this.endpoint} has no XML-RPC API (HTTP 404)`, {
        cause: error,
        details: { method, status },
      });
    }
    if (status !== undefined) {
      return new BackendError(
        `Cobbler at ${this.endpoint} sent an invalid answer to ${method} (HTTP ${status}): ${message}`,
        { cause: error, details: { method, status } },
      );
    }
    if (typeof foreign.code === 'string' && TRANSIENT_CODES.has(foreign.code)) {
      return new BackendUnavailableError(`Cobbler at ${this.endpoint} is unreachable: ${message}`, {
        cause: error,
        details: { method, code: foreign.code },
      });
    }
    return new BackendError(`calling ${method} on Cobbler at ${this.endpoint} failed: ${message}`, {
      cause: error,
      details: { method },
    });
  }

  private cancelled(method: string): CancelledError {
    return new CancelledError(`the call of ${method} to Cobbler was cancelled`, { details: { method } });
  }

  private unexpected(method: string, value: unknown): BackendError {
    return new BackendError(
      `Cobbler at ${this.endpoint} answered ${method} with an unexpected ${typeof value}`,
      {
        details: { method },
      },
    );
  }
}
