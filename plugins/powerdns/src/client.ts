/**
 * A small client of the PowerDNS Authoritative Server's HTTP API (`/api/v1/servers/<id>/zones/<zone>`) over Node's
 * fetch: the API key in `X-API-Key`, a timeout per request, reads of one RRset (`rrset_name`/`rrset_type`, PowerDNS
 * 4.7+), and PATCH of RRsets with `changetype` REPLACE or DELETE. It is the one place where PowerDNS's answers become
 * Consortium errors; the key is never logged and never part of an error.
 */
import type { Logger } from '@consortium/plugin-api';
import {
  BackendError,
  BackendUnavailableError,
  fetchBackendJson,
  isJsonObject,
} from '@consortium/plugin-api';

/** What the client needs. */
export interface PowerDnsClientOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly serverId: string;
  readonly timeoutMs: number;
}

/** One call: the signal that cancels it, a phrase for messages ("replace the records of web-01"), the logger. */
export interface CallOptions {
  readonly signal: AbortSignal;
  readonly action: string;
  readonly logger: Logger;
}

/** An RRset as the provider sees it: names lowercase without the final dot; enabled records only. */
export interface RRset {
  readonly ttl: number;
  readonly contents: readonly string[];
}

/** One RRset change of a PATCH. */
export type RRsetChange =
  | {
      readonly name: string;
      readonly type: string;
      readonly changetype: 'REPLACE';
      readonly ttl: number;
      readonly contents: readonly string[];
    }
  | { readonly name: string; readonly type: string; readonly changetype: 'DELETE' };

/** PowerDNS does not have the zone (404): a permanent fault for writes, "already gone" for removals. */
export class ZoneNotFoundError extends BackendError {
  /** The zone, lowercase without the final dot. */
  readonly zone: string;

  /** Names the zone and what to do about it. */
  constructor(zone: string, action: string, hint: string) {
    super(`PowerDNS has no zone ${zone} (404) to ${action}; ${hint}`, { details: { zone, status: 404 } });
    this.zone = zone;
  }
}

/** A name as PowerDNS spells it in the API: with the final dot. */
export function absolute(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** A name as the provider keeps it: lowercase, without the final dot. */
export function relative(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** PowerDNS's error text: `{"error": "..."}` for refusals, plain text ("Not Found") for some statuses. */
function errorText(body: unknown, text: string): string {
  if (isJsonObject(body) && typeof body['error'] === 'string') return body['error'].trim();
  const plain = text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > 200 ? `${plain.slice(0, 200)}…` : plain;
}

/** The PowerDNS HTTP API client. */
export class PowerDnsClient {
  /** Makes a client for one PowerDNS server. */
  constructor(private readonly options: PowerDnsClientOptions) {}

  /** The base URL the client talks to. */
  get baseUrl(): string {
    return this.options.baseUrl;
  }

  private get serverPath(): string {
    return `/api/v1/servers/${encodeURIComponent(this.options.serverId)}`;
  }

  /**
   * Sends one request and returns the status and parsed body of a 2xx or 404 answer. Throws
   * `BackendUnavailableError` (retryable) when PowerDNS cannot be reached, times out, or answers 5xx, 429 or 408;
   * `BackendError` for a refused key (401, 403), a refused change (400, 422, with PowerDNS's reason) and
   * anything else; `CancelledError` when the task's signal aborts.
   */
  private async send(
    method: 'GET' | 'PATCH',
    path: string,
    call: CallOptions,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const shown = `${this.serverPath}${path}`;
    const url = `${this.options.baseUrl}${shown}`;
    const started = Date.now();
    const {
      status,
      body: parsed,
      text,
      location,
    } = await fetchBackendJson(
      url,
      { headers: { 'x-api-key': this.options.apiKey }, ...(body === undefined ? {} : { body }) },
      {
        backend: 'PowerDNS',
        baseUrl: this.options.baseUrl,
        method,
        path: shown,
        action: call.action,
        timeoutMs: this.options.timeoutMs,
        signal: call.signal,
      },
    );
    call.logger.debug('powerdns request', { method, path: shown, status, ms: Date.now() - started });
    const details = { method, path: shown, status };
    if ((status >= 200 && status < 300) || status === 404) {
      if (status === 200 && parsed === undefined) {
        throw new BackendError(
          `PowerDNS answered ${method} ${shown} with something that is not JSON; is url (${this.options.baseUrl}) the PowerDNS webserver?`,
          { details },
        );
      }
      return { status, body: parsed };
    }
    const what = errorText(parsed, text);
    if (status === 401 || status === 403) {
      throw new BackendError(
        `PowerDNS refused the API key (${String(status)}${what === '' ? '' : ` ${what}`}) when asked to ${call.action}; check apiKey (or apiKeyEnv) against api-key in pdns.conf`,
        { details },
      );
    }
    if (status === 422 || status === 400) {
      throw new BackendError(`PowerDNS refused to ${call.action}: ${what} (${String(status)})`, {
        details: { ...details, error: what },
      });
    }
    if (status >= 300 && status < 400) {
      throw new BackendError(
        `PowerDNS redirected ${method} ${shown} to ${location ?? '(nowhere)'}; set url to the address its webserver is served at`,
        { details },
      );
    }
    if (status >= 500 || status === 429 || status === 408) {
      throw new BackendUnavailableError(
        `PowerDNS could not ${call.action}: ${String(status)}${what === '' ? '' : ` ${what}`}`,
        { details },
      );
    }
    throw new BackendError(
      `PowerDNS could not ${call.action}: ${String(status)}${what === '' ? '' : ` ${what}`}`,
      { details },
    );
  }

  /**
   * A 404 on a zone path means either that the zone is missing or that the URL or server id is wrong (PowerDNS
   * answers both alike); asking for the server tells them apart.
   */
  private async notFound(zone: string, call: CallOptions, hint: string): Promise<never> {
    const server = await this.send('GET', '', call);
    if (server.status === 404) {
      throw new BackendError(
        `PowerDNS at ${this.options.baseUrl} has no server "${this.options.serverId}" (404); is url its webserver with api=yes, and serverId right?`,
        { details: { status: 404 } },
      );
    }
    throw new ZoneNotFoundError(zone, call.action, hint);
  }

  private zonePath(zone: string): string {
    return `/zones/${encodeURIComponent(absolute(zone))}`;
  }

  /**
   * The enabled records of one RRset (`name`, `type`) of `zone`, or undefined when there are none. Throws
   * `ZoneNotFoundError` (with `hint` saying what to do) when PowerDNS has no such zone.
   */
  async rrset(
    zone: string,
    name: string,
    type: string,
    call: CallOptions,
    hint: string,
  ): Promise<RRset | undefined> {
    const query = new URLSearchParams({ rrsets: 'true', rrset_name: absolute(name), rrset_type: type });
    const answer = await this.send('GET', `${this.zonePath(zone)}?${query.toString()}`, call);
    if (answer.status === 404) return this.notFound(zone, call, hint);
    const body = answer.body;
    if (!isJsonObject(body) || !Array.isArray(body['rrsets'])) {
      throw new BackendError(`PowerDNS answered the zone ${zone} without rrsets`, { details: { zone } });
    }
    for (const item of body['rrsets']) {
      if (!isJsonObject(item)) continue;
      // Older servers ignore rrset_name and answer the whole zone: pick the RRset out.
      if (typeof item['name'] !== 'string' || relative(item['name']) !== relative(name)) continue;
      if (item['type'] !== type) continue;
      const records = Array.isArray(item['records']) ? item['records'] : [];
      const contents = records
        .filter(isJsonObject)
        .filter((record) => record['disabled'] !== true && typeof record['content'] === 'string')
        .map((record) => (record['content'] as string).toLowerCase())
        .sort();
      if (contents.length === 0) return undefined;
      return { ttl: typeof item['ttl'] === 'number' ? item['ttl'] : 0, contents };
    }
    return undefined;
  }

  /**
   * Changes RRsets of one zone in one PATCH (PowerDNS applies it whole or not at all). DELETE of an RRset that is
   * not there succeeds. Throws `ZoneNotFoundError` when PowerDNS has no such zone.
   */
  async patch(zone: string, changes: readonly RRsetChange[], call: CallOptions, hint: string): Promise<void> {
    const rrsets = changes.map((change) =>
      change.changetype === 'DELETE'
        ? { name: absolute(change.name), type: change.type, changetype: 'DELETE', records: [] }
        : {
            name: absolute(change.name),
            type: change.type,
            ttl: change.ttl,
            changetype: 'REPLACE',
            records: change.contents.map((content) => ({ content, disabled: false })),
          },
    );
    const answer = await this.send('PATCH', this.zonePath(zone), call, { rrsets });
    if (answer.status === 404) await this.notFound(zone, call, hint);
  }
}
