/**
 * The Cobbler client against the Cobbler 3.3.7 test server: lazy login, one re-login on a refused token, the two
 * forms of endpoint, and the translation of faults, HTTP errors, refused connections and timeouts into Consortium
 * errors.
 */
import { createServer } from 'node:http';
import type { Logger } from '@consortium/core';
import { BackendError, BackendUnavailableError, CancelledError, InputError } from '@consortium/core';
import type { CobblerTestServer } from '@consortium/test-cobbler-server';
import { startCobblerServer } from '@consortium/test-cobbler-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CobblerClient } from './cobbler-client.js';

const PASSWORD = 'pxe-secret-42';

/** A logger that keeps every line, to prove what never gets logged. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(meta ?? {})}`);
  };
  return {
    lines,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
}

let server: CobblerTestServer;
let logger: ReturnType<typeof recordingLogger>;
const signal = new AbortController().signal;

function client(options: { url?: string; timeoutMs?: number; password?: string } = {}): CobblerClient {
  return new CobblerClient({
    url: options.url ?? server.url,
    username: 'consortium',
    password: options.password ?? PASSWORD,
    timeoutMs: options.timeoutMs ?? 2_000,
    logger,
  });
}

/** The error `promise` rejects with, asserted to be of class `type`. */
async function rejection<T extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
): Promise<T> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(type);
  if (!(thrown instanceof type)) throw new Error('unreachable');
  return thrown;
}

beforeEach(async () => {
  server = await startCobblerServer({ users: { consortium: PASSWORD } });
  logger = recordingLogger();
});

afterEach(async () => {
  await server.stop();
});

const logins = (): number => server.calls.filter((c) => c.method === 'login').length;

describe('CobblerClient', () => {
  it('reads without logging in, logs in on the first write, and keeps the token', async () => {
    const cobbler = client();
    expect(await cobbler.getSystem('web-01', signal)).toBeNull();
    expect(logins()).toBe(0);
    await cobbler.newSystem(signal);
    await cobbler.newSystem(signal);
    expect(logins()).toBe(1);
  });

  it('shares one login between concurrent calls', async () => {
    const cobbler = client();
    await Promise.all(Array.from({ length: 5 }, () => cobbler.newSystem(signal)));
    expect(logins()).toBe(1);
  });

  it('logs in again once when the token has expired, transparently', async () => {
    const cobbler = client();
    await cobbler.newSystem(signal);
    server.expireTokens();
    expect(await cobbler.newSystem(signal)).toMatch(/^___NEW___system::/);
    expect(logins()).toBe(2);
    expect(server.calls.map((c) => [c.method, c.fault === undefined ? 'ok' : 'fault'])).toEqual([
      ['login', 'ok'],
      ['new_system', 'ok'],
      ['new_system', 'fault'],
      ['login', 'ok'],
      ['new_system', 'ok'],
    ]);
  });

  it('gives up after one re-login, without showing the token', async () => {
    const cobbler = client();
    server.injectFault('sync', 'invalid token: c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1ub3QtbGVhaw==', 2);
    const error = await rejection(cobbler.sync(signal), BackendError);
    expect(error.message).toBe(
      "Cobbler fault in sync: <class 'cobbler.cexceptions.CX'>:'invalid token: <redacted>'",
    );
    expect(logins()).toBe(2);
  });

  it('turns a refused login into a non-retryable BackendError naming the user, not the password', async () => {
    const error = await rejection(client({ password: 'wrong' }).sync(signal), BackendError);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `Cobbler at ${server.url} refused the login of user "consortium": <class 'cobbler.cexceptions.CX'>:'login failed (consortium)'`,
    );
  });

  it('turns a fault into a non-retryable BackendError with the fault text', async () => {
    const cobbler = client();
    const handle = await cobbler.newSystem(signal);
    const error = await rejection(cobbler.modifySystem(handle, 'profile', 'nope', signal), BackendError);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `Cobbler fault in modify_system: <class 'ValueError'>:Profile with the name "nope" is not existing`,
    );
    expect(error.details).toEqual({
      method: 'modify_system',
      faultCode: 1,
      faultString: `<class 'ValueError'>:Profile with the name "nope" is not existing`,
    });
  });

  it('refuses an attribute Cobbler answers false for', async () => {
    const cobbler = client();
    const handle = await cobbler.newSystem(signal);
    const error = await rejection(
      cobbler.modifySystem(handle, 'mac_address-eth0', 'x', signal),
      BackendError,
    );
    expect(error.message).toBe(
      `Cobbler at ${server.url} does not know the system attribute "mac_address-eth0"`,
    );
  });

  it('turns a refused connection into a retryable BackendUnavailableError', async () => {
    await server.stop();
    const error = await rejection(client().getSystem('web-01', signal), BackendUnavailableError);
    expect(error.retryable).toBe(true);
    expect(error.message).toBe(
      `Cobbler at ${server.url} is unreachable: connect ECONNREFUSED 127.0.0.1:${server.port}`,
    );
  });

  it('turns a cut connection and an HTTP 5xx into a retryable BackendUnavailableError', async () => {
    server.injectFault('get_system', { kind: 'drop' });
    const dropped = await rejection(client().getSystem('web-01', signal), BackendUnavailableError);
    expect(dropped.message).toMatch(new RegExp(`^Cobbler at ${server.url} is unreachable: `));

    server.injectFault('get_system', { kind: 'http', status: 503 });
    const unavailable = await rejection(client().getSystem('web-01', signal), BackendUnavailableError);
    expect(unavailable.message).toBe(`Cobbler at ${server.url} answered get_system with HTTP 503`);
  });

  it('turns a call that takes too long into a retryable BackendUnavailableError', async () => {
    server.injectFault('get_system', { kind: 'delay', ms: 500 });
    const error = await rejection(
      client({ timeoutMs: 100 }).getSystem('web-01', signal),
      BackendUnavailableError,
    );
    expect(error.message).toBe(`Cobbler at ${server.url} did not answer get_system within 100 ms`);
  });

  it("says so when neither /cobbler_api nor cobblerd's / and /RPC2 answer on that host and port", async () => {
    // A web server that is not Cobbler: every path answers 404.
    const apacheless = createServer((_request, response) => {
      response.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>Not Found</h1>');
    });
    await new Promise<void>((resolve) => apacheless.listen(0, '127.0.0.1', resolve));
    const port = (apacheless.address() as { port: number }).port;
    try {
      const nowhere = `http://127.0.0.1:${port}/cobbler_api`;
      const error = await rejection(client({ url: nowhere }).getSystem('web-01', signal), BackendError);
      expect(error.message).toBe(
        `Cobbler at ${nowhere} has no XML-RPC API (HTTP 404), nor at /RPC2, /; point url at Apache's /cobbler_api or at cobblerd's / or /RPC2 (port 25151)`,
      );
      expect(error.retryable).toBe(false);
    } finally {
      apacheless.close();
    }
  });

  it('pointed at cobblerd with /cobbler_api, finds / and says which endpoint answered', async () => {
    await server.stop();
    server = await startCobblerServer({ users: { consortium: PASSWORD }, endpoint: 'cobblerd' });
    const configured = `${server.url}cobbler_api`;
    const cobbler = client({ url: configured });
    expect(await cobbler.getSystem('web-01', signal)).toBeNull();
    expect(cobbler.endpoint).toBe(`${server.url}RPC2`);
    expect(logger.lines).toContainEqual(
      `warn Cobbler has no XML-RPC API at ${configured} (HTTP 404) but answers cobblerd itself at /RPC2; set url to ${server.url}RPC2 {"endpoint":"${server.url}RPC2"}`,
    );
    // Found once: later calls go straight to /RPC2.
    await cobbler.newSystem(signal);
    expect(server.calls.map((c) => c.method)).toEqual(['version', 'get_system', 'login', 'new_system']);
  });

  it('accepts both forms of endpoint and says which one answered', async () => {
    const apache = client();
    await apache.getSystem('web-01', signal);
    expect(logger.lines).toContainEqual(
      `info Cobbler answers XML-RPC through Apache at /cobbler_api {"endpoint":"${server.url}"}`,
    );
    await server.stop();
    server = await startCobblerServer({ users: { consortium: PASSWORD }, endpoint: 'cobblerd' });
    for (const path of ['', 'RPC2']) {
      const direct = client({ url: `${server.url}${path}` });
      expect(await direct.getSystem('web-01', signal)).toBeNull();
      expect(direct.endpoint).toBe(`${server.url}${path}`);
      expect(logger.lines).toContainEqual(
        `info Cobbler answers XML-RPC cobblerd itself at /${path} {"endpoint":"${server.url}${path}"}`,
      );
    }
  });

  it('stops at once when the task is cancelled', async () => {
    server.injectFault('get_system', { kind: 'delay', ms: 500 });
    const controller = new AbortController();
    const pending = client().getSystem('web-01', controller.signal);
    controller.abort();
    const error = await rejection(pending, CancelledError);
    expect(error.message).toBe('the call of get_system to Cobbler was cancelled');
  });

  it('refuses a url that is not http(s)', () => {
    expect(() => client({ url: 'ftp://cobbler/cobbler_api' })).toThrow(InputError);
    expect(() => client({ url: 'ftp://cobbler/cobbler_api' })).toThrow(
      'the Cobbler url must start with http:// or https://, not ftp:',
    );
  });

  it('never logs the password or a token', async () => {
    const cobbler = client();
    await cobbler.newSystem(signal);
    server.expireTokens();
    await cobbler.newSystem(signal);
    await rejection(client({ password: 'wrong' }).sync(signal), BackendError);
    expect(logger.lines.length).toBeGreaterThan(0);
    const tokens = server.calls.filter((c) => c.method === 'new_system').map((c) => String(c.params[0]));
    for (const line of logger.lines) {
      expect(line).not.toContain(PASSWORD);
      for (const token of tokens) expect(line).not.toContain(token);
    }
  });
});
