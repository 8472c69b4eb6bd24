/**
 * One HTTP call to a backend's REST API with a timeout, its transport failures translated at the edge the same way
 * for every plugin: the task's abort is `CancelledError`, no answer in time or no connection is
 * `BackendUnavailableError` (retryable) naming the backend, the URL and what the call was for.
 */
import { BackendUnavailableError, CancelledError } from '@consortium/core';

/** What a call is, for its error messages. */
export interface BackendCall {
  /** The backend's name as operators know it: `NetBox`, `PowerDNS`. */
  readonly backend: string;
  /** The base URL the plugin was pointed at. */
  readonly baseUrl: string;
  /** The method and path, as shown in messages. */
  readonly method: string;
  readonly path: string;
  /** What the call was for: `create the VM record`. */
  readonly action: string;
  readonly timeoutMs: number;
  /** The task's signal. */
  readonly signal: AbortSignal;
}

/** Sends `init` to `url` and reads the answer's text; throws `CancelledError` or `BackendUnavailableError`. */
export async function fetchBackend(
  url: string,
  init: Omit<RequestInit, 'signal'>,
  call: BackendCall,
): Promise<{ readonly response: Response; readonly text: string }> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.any([call.signal, timeout]) });
    return { response, text: await response.text() };
  } catch (error) {
    const details = { method: call.method, path: call.path };
    if (call.signal.aborted) {
      throw new CancelledError(`cancelled while ${call.backend} was asked to ${call.action}`, {
        cause: error,
      });
    }
    if (timeout.aborted) {
      throw new BackendUnavailableError(
        `${call.backend} did not answer within ${String(call.timeoutMs)} ms (${call.method} ${call.path}, to ${call.action})`,
        { cause: error, details },
      );
    }
    throw new BackendUnavailableError(
      `cannot reach ${call.backend} at ${call.baseUrl} to ${call.action}: ${networkReason(error)}`,
      { cause: error, details },
    );
  }
}

/** The low-level reason fetch failed (ECONNREFUSED, ENOTFOUND, ...), from undici's `cause`. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  const message = (cause as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : (error as Error).message;
}

/** A JSON call's answer: the status, the body parsed (undefined when empty or not JSON; the caller decides). */
export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
  /** The body as sent, for error messages when it is not JSON. */
  readonly text: string;
  /** Where a 3xx answer points. */
  readonly location: string | undefined;
}

/**
 * Sends `body` (if any) as JSON with `headers` (the backend's credentials) and parses the answer as JSON; redirects
 * are not followed, since a REST API that redirects is the wrong URL. Transport failures as `fetchBackend`.
 */
export async function fetchBackendJson(
  url: string,
  request: { readonly headers: Readonly<Record<string, string>>; readonly body?: unknown },
  call: BackendCall,
): Promise<JsonAnswer> {
  const { response, text } = await fetchBackend(
    url,
    {
      method: call.method,
      redirect: 'manual',
      headers: {
        ...request.headers,
        // PowerDNS answers 400 to `Accept: */*`, fetch's default.
        accept: 'application/json',
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    },
    call,
  );
  let body: unknown = undefined;
  if (text !== '') {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = undefined;
    }
  }
  return { status: response.status, body, text, location: response.headers.get('location') ?? undefined };
}
