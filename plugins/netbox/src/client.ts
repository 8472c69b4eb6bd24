/**
 * A small NetBox REST client over Node's fetch: token authentication, a timeout per request, pagination that
 * follows `next`, and the one place where NetBox's answers become Consortium errors. The token goes into the
 * Authorization header only; it is never logged and never part of an error.
 */
import type { Logger } from '@consortium/plugin-api';
import {
  BackendError,
  BackendUnavailableError,
  fetchBackendJson,
  isJsonObject,
} from '@consortium/plugin-api';

/** One page of a NetBox list. */
export interface NetboxPage<T> {
  readonly count: number;
  readonly next: string | null;
  readonly previous: string | null;
  readonly results: readonly T[];
}

/** Query parameters; an array repeats the parameter (NetBox ORs repeated filters). */
export type Query = Readonly<Record<string, string | number | readonly string[] | undefined>>;

/** What the client needs. */
export interface NetboxClientOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs: number;
  readonly pageSize: number;
}

/** One call: the signal that cancels it and a phrase for messages ("create virtual machine web-01"). */
export interface CallOptions {
  readonly signal: AbortSignal;
  readonly action: string;
  readonly logger: Logger;
}

const PLAIN_KEYS = new Set(['__all__', 'non_field_errors', 'detail']);

/**
 * NetBox's error body as one line: `site: Related object not found ...; name: This field is required.`.
 * Model-level errors (`__all__`, `non_field_errors`) and `detail` appear without a field name.
 */
export function describeErrorBody(body: unknown, field?: string): string[] {
  if (typeof body === 'string') return [field === undefined ? body : `${field}: ${body}`];
  if (Array.isArray(body)) return body.flatMap((item) => describeErrorBody(item, field));
  if (isJsonObject(body)) {
    return Object.entries(body).flatMap(([key, value]) =>
      describeErrorBody(value, PLAIN_KEYS.has(key) ? field : field === undefined ? key : `${field}.${key}`),
    );
  }
  return typeof body === 'number' || typeof body === 'boolean' ? [String(body)] : [];
}

/** The `<title>` of an HTML page (a proxy's error page), or the start of any other text. */
function textSummary(text: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  const summary = (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  return summary.length > 200 ? `${summary.slice(0, 200)}…` : summary;
}

function summary(body: unknown, text: string): string {
  if (isJsonObject(body)) {
    // NetBox's 500 handler puts the exception into `error`; DRF's refusals use `detail`.
    const error = body['error'] ?? body['detail'];
    if (typeof error === 'string') return error.trim();
    return describeErrorBody(body).join('; ');
  }
  return textSummary(text);
}

/** The NetBox REST client. */
export class NetboxClient {
  /** Makes a client for one NetBox. */
  constructor(private readonly options: NetboxClientOptions) {}

  /** The base URL the client talks to. */
  get baseUrl(): string {
    return this.options.baseUrl;
  }

  private url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      const items: readonly string[] = Array.isArray(value) ? value : [String(value)];
      for (const item of items) params.append(key, item);
    }
    const search = params.toString();
    return `${this.options.baseUrl}${path}${search === '' ? '' : `?${search}`}`;
  }

  /**
   * Sends one request and returns the status and parsed body of a 2xx or 404 answer. Throws
   * `BackendUnavailableError` (retryable) when NetBox cannot be reached, times out, or answers 5xx or 429;
   * `BackendError` for refusals (400 with NetBox's field messages, 401/403 for the token, redirects);
   * `CancelledError` when the task's signal aborts.
   */
  async send(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    call: CallOptions,
    options: { readonly query?: Query; readonly body?: unknown } = {},
  ): Promise<{ status: number; body: unknown }> {
    const url = this.url(path, options.query);
    const shown = url.slice(this.options.baseUrl.length);
    const started = Date.now();
    const { status, body, text, location } = await fetchBackendJson(
      url,
      {
        headers: { authorization: `Token ${this.options.token}` },
        ...(options.body === undefined ? {} : { body: options.body }),
      },
      {
        backend: 'NetBox',
        baseUrl: this.options.baseUrl,
        method,
        path: shown,
        action: call.action,
        timeoutMs: this.options.timeoutMs,
        signal: call.signal,
      },
    );
    call.logger.debug('netbox request', { method, path: shown, status, ms: Date.now() - started });
    const details = { method, path: shown, status };
    if ((status >= 200 && status < 300) || status === 404) {
      if (status !== 204 && status !== 404 && body === undefined) {
        throw new BackendError(
          `NetBox answered ${method} ${shown} with something that is not JSON; is url (${this.options.baseUrl}) NetBox's base URL?`,
          { details },
        );
      }
      return { status, body };
    }
    const what = summary(body, text);
    if (status === 400) {
      throw new BackendError(`NetBox refused to ${call.action}: ${what}`, {
        details: { ...details, errors: body ?? what },
      });
    }
    if (status === 401 || status === 403) {
      throw new BackendError(`NetBox refused the token (${status}: ${what}) when asked to ${call.action}`, {
        details,
      });
    }
    if (status >= 300 && status < 400) {
      throw new BackendError(
        `NetBox redirected ${method} ${shown} to ${location ?? '(nowhere)'}; set url to the address NetBox is served at`,
        { details },
      );
    }
    if (status >= 500 || status === 429 || status === 408) {
      throw new BackendUnavailableError(
        `NetBox could not ${call.action}: ${status}${what === '' ? '' : ` ${what}`}`,
        { details },
      );
    }
    throw new BackendError(`NetBox could not ${call.action}: ${status}${what === '' ? '' : ` ${what}`}`, {
      details,
    });
  }

  /** Reads one object; undefined when NetBox answers 404. */
  async get(path: string, call: CallOptions): Promise<unknown> {
    const { status, body } = await this.send('GET', path, call);
    return status === 404 ? undefined : body;
  }

  /**
   * Lists every object matching `query`, following NetBox's `next` links page by page. The links are followed
   * by their query only, against the configured base URL, because a NetBox behind a proxy often advertises its
   * own idea of scheme and host. Throws `BackendError` for a list endpoint that does not exist.
   */
  async list(path: string, query: Query, call: CallOptions): Promise<unknown[]> {
    const results: unknown[] = [];
    let params: Query = { ...query, limit: this.options.pageSize };
    for (let page = 0; ; page++) {
      const { status, body } = await this.send('GET', path, call, { query: params });
      if (status === 404) {
        throw new BackendError(
          `NetBox has no ${path} (404); is url (${this.options.baseUrl}) NetBox's base URL?`,
        );
      }
      if (!isJsonObject(body) || !Array.isArray(body['results'])) {
        throw new BackendError(`NetBox answered GET ${path} with something that is not a page of results`);
      }
      const pageOf = body as unknown as NetboxPage<unknown>;
      results.push(...pageOf.results);
      if (pageOf.next === null || pageOf.results.length === 0 || results.length >= pageOf.count) break;
      if (page > 10_000) throw new BackendError(`NetBox kept paging ${path}; giving up after 10000 pages`);
      const next = new URL(pageOf.next);
      const following: Record<string, string | string[]> = {};
      for (const key of new Set(next.searchParams.keys())) following[key] = next.searchParams.getAll(key);
      params = following;
    }
    return results;
  }

  /** Creates an object (POST) and returns NetBox's representation of it. */
  async create(path: string, body: unknown, call: CallOptions): Promise<unknown> {
    const answer = await this.send('POST', path, call, { body });
    if (answer.status === 404) throw new BackendError(`NetBox has no ${path} (404)`);
    return answer.body;
  }

  /** Changes an object (PATCH); undefined when it is gone (404). */
  async patch(path: string, body: unknown, call: CallOptions): Promise<unknown> {
    const answer = await this.send('PATCH', path, call, { body });
    return answer.status === 404 ? undefined : answer.body;
  }

  /** Deletes an object; `gone` when NetBox answers 404 (someone deleted it already). */
  async delete(path: string, call: CallOptions): Promise<'deleted' | 'gone'> {
    const answer = await this.send('DELETE', path, call);
    return answer.status === 404 ? 'gone' : 'deleted';
  }
}
