/**
 * The HTTP client of `consort`: JSON in and out, problems turned into one-line errors with the right exit code.
 * It uses node:http rather than fetch, whose first use costs tens of milliseconds of start-up.
 */
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CliError, EXIT, exitForStatus } from './errors.js';
import type { Target } from './config.js';

/** An answer from the server. */
export interface Answer {
  readonly status: number;
  /** Response headers, lower-case names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: unknown;
}

/** Options of one request. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  /** Statuses that are not errors for this call (besides 2xx). */
  readonly accept?: readonly number[];
}

/** Talks to one Consortium server. */
export class Client {
  constructor(readonly target: Target) {}

  /** Sends a request and returns the response as a stream; throws `CliError` with exit 3 when unreachable. */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<IncomingMessage> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.target.token !== undefined) headers['authorization'] = `Bearer ${this.target.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = options.type ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    let url: URL;
    try {
      url = new URL(`${this.target.url}${path}`);
    } catch {
      throw new CliError(`invalid server URL "${this.target.url}" (${this.target.source})`, EXIT.usage);
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers }, resolve);
      req.on('error', (error: NodeJS.ErrnoException) => {
        reject(
          new CliError(
            `cannot reach ${this.target.url} (${error.code ?? error.message}); is the server running? (${this.target.source})`,
            EXIT.unreachable,
          ),
        );
      });
      req.end(body);
    });
  }

  /** Sends a request and reads its JSON; a problem answer becomes a `CliError` with its detail. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const response = await this.fetch(method, path, options);
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = response.statusCode ?? 0;
    let body: unknown = text;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
    }
    if (status >= 400 && !(options.accept ?? []).includes(status)) {
      const problem = body as { detail?: unknown; code?: unknown } | undefined;
      const detail = typeof problem?.detail === 'string' ? problem.detail : `HTTP ${status}`;
      const code = typeof problem?.code === 'string' ? ` [${problem.code}]` : '';
      throw new CliError(`${detail}${code}`, exitForStatus(status));
    }
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(response.headers))
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    return { status, headers, body };
  }
}
