/**
 * The console's only way to the server: the public HTTP API with the bearer token the operator signed in with.
 * The token lives in this tab's session storage (never in a URL or a cookie), so closing the tab signs out.
 */
import type { CallerView, JobEventView, ProblemView } from '@consortium/core';

const TOKEN_KEY = 'consortium.token';
const CALLER_KEY = 'consortium.caller';

/** An error answer from the API, with its problem details (or a made-up one for a non-JSON answer). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: ProblemView,
    readonly headers: Headers,
  ) {
    super(problem.detail);
    this.name = 'ApiError';
  }
}

/** The signed-in session: the token and who it is. */
export interface Session {
  readonly token: string;
  readonly caller: CallerView;
}

/** The session of this tab, if signed in. */
export function currentSession(): Session | undefined {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const caller = sessionStorage.getItem(CALLER_KEY);
  if (token === null || caller === null) return undefined;
  return { token, caller: JSON.parse(caller) as CallerView };
}

/** Checks a token against `/api/whoami` and keeps it for this tab; throws `ApiError` when refused. */
export async function signIn(token: string): Promise<Session> {
  const caller = await request<CallerView>('GET', '/api/whoami', { token });
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(CALLER_KEY, JSON.stringify(caller.body));
  return { token, caller: caller.body };
}

/** Forgets the token of this tab. */
export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CALLER_KEY);
}

/** Options of one request. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly type?: string;
  readonly headers?: Record<string, string>;
  /** A token other than the session's (sign-in). */
  readonly token?: string;
  readonly signal?: AbortSignal;
}

/** A successful answer. */
export interface Answer<T> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** Listeners told when the server refuses the token (401): the app goes back to the sign-in page. */
const unauthenticated = new Set<() => void>();

/** Calls `listener` whenever the API answers 401; returns a function that stops it. */
export function onUnauthenticated(listener: () => void): () => void {
  unauthenticated.add(listener);
  return () => unauthenticated.delete(listener);
}

function authHeaders(token: string | undefined): Record<string, string> {
  const bearer = token ?? currentSession()?.token;
  return bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
}

async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  let problem: ProblemView;
  try {
    problem = JSON.parse(text) as ProblemView;
    if (typeof problem.detail !== 'string') throw new Error('not a problem');
  } catch {
    problem = {
      type: 'about:blank',
      title: response.statusText,
      status: response.status,
      code: 'INTERNAL',
      detail: `HTTP ${response.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`,
    };
  }
  return new ApiError(response.status, problem, response.headers);
}

/** Sends one request to the API; a 4xx/5xx answer throws `ApiError` with the server's problem details. */
export async function request<T>(
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...authHeaders(options.token),
    ...options.headers,
  };
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = options.type ?? 'application/json';
  }
  const response = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    ...(body === undefined ? {} : { body }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  if (!response.ok) {
    const error = await problemOf(response);
    if (response.status === 401 && options.token === undefined)
      for (const listener of unauthenticated) listener();
    throw error;
  }
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? undefined : JSON.parse(text)) as T,
  };
}

/**
 * Follows a job's event stream. EventSource cannot send an Authorization header, so the stream is read with fetch
 * and parsed here (the `text/event-stream` framing: `id:`, `event:`, `data:` lines, a blank line ends an event).
 * Resolves when the stream ends (after the `ended` event) or `signal` aborts.
 */
export async function followEvents(
  path: string,
  onEvent: (event: JobEventView) => void,
  signal: AbortSignal,
): Promise<void> {
  const response = await fetch(path, {
    headers: { accept: 'text/event-stream', ...authHeaders(undefined) },
    cache: 'no-store',
    signal,
  });
  if (!response.ok || response.body === null) throw await problemOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (data.length > 0) onEvent(JSON.parse(data.join('\n')) as JobEventView);
          data = [];
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        newline = buffer.indexOf('\n');
      }
    }
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
}

/** The message of anything thrown, for showing in the page. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError)
    return `${error.problem.detail} [${error.problem.code}, HTTP ${error.status}]`;
  return error instanceof Error ? error.message : String(error);
}
