/**
 * A Cobbler 3.3.7-compatible XML-RPC server for tests: the `xmlrpc` library's server on a free loopback port,
 * answering with the simulated Cobbler in `cobbler-model.ts` either as Apache in front of cobblerd does (only
 * `/cobbler_api`) or as cobblerd itself does (`/` and `/RPC2`), with faults that tests inject per method (an XML-RPC
 * fault, an HTTP error, a dropped connection, a slow answer), a stop/start that keeps state and a cobblerd restart
 * that keeps only what was saved.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import xmlrpc from 'xmlrpc';
import type { SystemDict, SystemSeed } from './cobbler-model.js';
import { CobblerModel, DEFAULT_TOKEN_TTL_MS } from './cobbler-model.js';
import { cx, PYTHON_FAULT_CODE, PythonError } from './python-error.js';

/** The path Apache serves Cobbler's API at (`ProxyPass /cobbler_api http://127.0.0.1:25151/` in cobbler.conf). */
export const COBBLER_API_PATH = '/cobbler_api';

/**
 * The paths cobblerd itself answers XML-RPC at: `CobblerXMLRPCServer` (remote.py) keeps the `rpc_paths` of Python's
 * `SimpleXMLRPCRequestHandler`, `('/', '/RPC2')`, compared with the whole request path.
 */
export const COBBLERD_RPC_PATHS: readonly string[] = ['/', '/RPC2'];

/** Who answers HTTP: Apache proxying `/cobbler_api`, or cobblerd on its own port. */
export type CobblerEndpoint = 'apache' | 'cobblerd';

/** A fault a test injects for the next calls of one method. */
export type InjectedFault =
  /** An XML-RPC fault, as Cobbler raises it. */
  | { readonly kind: 'fault'; readonly faultString: string; readonly faultCode?: number }
  /** An HTTP error page instead of an XML-RPC answer (an overloaded or misconfigured proxy). */
  | { readonly kind: 'http'; readonly status: number; readonly body?: string }
  /** The connection is cut before any answer. */
  | { readonly kind: 'drop' }
  /** The answer comes `ms` milliseconds late. */
  | { readonly kind: 'delay'; readonly ms: number };

/** One call the server received; a login's password is redacted. */
export interface CobblerCall {
  readonly method: string;
  readonly params: readonly unknown[];
  /** The injected fault that answered the call, if any. */
  readonly injected?: InjectedFault['kind'];
  /** The fault string the call was answered with, if it failed. */
  readonly fault?: string;
}

/** Options of `startCobblerServer`. */
export interface CobblerServerOptions {
  /** Users and their passwords (default `{ cobbler: 'cobbler' }`, Cobbler's packaged default). */
  readonly users?: Readonly<Record<string, string>>;
  /** How long a login token lives without a `token_check` (default one hour, Cobbler's default). */
  readonly tokenTtlMs?: number;
  /** Profiles that exist (default `['debian12-x86_64']`). */
  readonly profiles?: readonly string[];
  /** The clock (default `Date.now`). */
  readonly now?: () => number;
  /** Who answers (default `apache`: only `/cobbler_api`; `cobblerd`: `/` and `/RPC2`). */
  readonly endpoint?: CobblerEndpoint;
}

/** A running test server. */
export interface CobblerTestServer {
  /** The API endpoint: `http://127.0.0.1:<port>/cobbler_api` behind Apache, `http://127.0.0.1:<port>/` for cobblerd. */
  readonly url: string;
  readonly port: number;
  /** Every call received, in order. */
  readonly calls: CobblerCall[];
  /** How many calls each method received so far (faulted ones included), by method name. */
  callCounts(): Record<string, number>;
  /** Every system as saved on disk, sorted by name (unsaved handle edits are not in it). */
  systems(): SystemDict[];
  /** One system as saved on disk, or undefined. */
  system(name: string): SystemDict | undefined;
  /** One system as cobblerd holds it in memory now, unsaved edits included, or undefined. */
  liveSystem(name: string): SystemDict | undefined;
  /** The files under `pxelinux.cfg/` in the TFTP root (`01-<mac with dashes>` per interface), sorted. */
  pxeFiles(): string[];
  /** Makes `sync` fail with a CX carrying `reason`, or (undefined) work again. */
  setSyncFailure(reason: string | undefined): void;
  /**
   * Restarts cobblerd: it reads its systems back from disk (unsaved edits are lost) and forgets tokens and unsaved
   * new objects. The port keeps listening.
   */
  restart(): void;
  /** Inserts a saved system directly (test setup). */
  addSystem(seed: SystemSeed): void;
  /** Adds a profile. */
  addProfile(name: string): void;
  /** How many times `sync` ran. */
  syncs(): number;
  /**
   * Answers the next `times` calls of `method` with `fault`; a string is a Cobbler `CX` with that message.
   * `times` may be `Infinity`.
   */
  injectFault(method: string, fault: InjectedFault | string, times?: number): void;
  /** Removes every injected fault. */
  clearFaults(): void;
  /** Changes how long tokens live. */
  setTokenTtl(ms: number): void;
  /** Invalidates every token now (as `token_check` does for tokens older than their lifetime). */
  expireTokens(): void;
  /** Stops listening and cuts open connections; state is kept for `start`. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

type XmlRpcCallback = (error: unknown, value: unknown) => void;

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    request.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a Cobbler 3.3.7-compatible XML-RPC server on a free port of 127.0.0.1. */
export async function startCobblerServer(options: CobblerServerOptions = {}): Promise<CobblerTestServer> {
  const model = new CobblerModel({
    users: options.users ?? { cobbler: 'cobbler' },
    profiles: options.profiles ?? ['debian12-x86_64'],
    tokenTtlMs: options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS,
    now: options.now ?? Date.now,
  });
  const endpoint = options.endpoint ?? 'apache';
  const rpcPaths = endpoint === 'apache' ? [COBBLER_API_PATH] : COBBLERD_RPC_PATHS;
  const calls: CobblerCall[] = [];
  const faults = new Map<string, { fault: InjectedFault; remaining: number }[]>();

  /** The next injected fault of `method` at this level, consumed. */
  const takeFault = (method: string, transport: boolean): InjectedFault | undefined => {
    const queue = faults.get(method);
    const head = queue?.[0];
    if (queue === undefined || head === undefined || (head.fault.kind !== 'fault') !== transport)
      return undefined;
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.fault;
  };

  let listening: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    listening = resolve;
  });
  const server = xmlrpc.createServer({ host: '127.0.0.1', port: 0 }, () => {
    listening();
  });
  const http = server.httpServer;

  const unknownMethod = (name: string) => (_error: unknown, params: unknown, callback: XmlRpcCallback) => {
    const faultString = cx(`unknown remote method '${name}'`).faultString;
    calls.push({ method: name, params: params as unknown[], fault: faultString });
    callback({ faultCode: PYTHON_FAULT_CODE, faultString }, undefined);
  };

  for (const [name, method] of Object.entries(model.methods)) {
    server.on(name, (_error: unknown, params: unknown, callback: XmlRpcCallback) => {
      const args = (params ?? []) as unknown[];
      const recorded = name === 'login' ? [args[0], '<redacted>'] : args;
      const injected = takeFault(name, false);
      if (injected?.kind === 'fault') {
        calls.push({ method: name, params: recorded, injected: 'fault', fault: injected.faultString });
        callback(
          { faultCode: injected.faultCode ?? PYTHON_FAULT_CODE, faultString: injected.faultString },
          undefined,
        );
        return;
      }
      try {
        const value = method(args);
        calls.push({ method: name, params: recorded });
        callback(null, value);
      } catch (error) {
        const faultString =
          error instanceof PythonError
            ? error.faultString
            : `<class 'Exception'>:${error instanceof Error ? error.message : String(error)}`;
        calls.push({ method: name, params: recorded, fault: faultString });
        callback({ faultCode: PYTHON_FAULT_CODE, faultString }, undefined);
      }
    });
  }

  // The library answers every path and sends 404 for unknown methods; Cobbler serves its paths only and answers an
  // unknown method with a fault. The library's handler is wrapped to do both, and to apply transport faults.
  const [libraryHandler] = http.listeners('request') as ((
    req: IncomingMessage,
    res: ServerResponse,
  ) => void)[];
  if (libraryHandler === undefined) throw new Error('the xmlrpc server registered no request handler');
  http.removeAllListeners('request');
  http.on('request', (request: IncomingMessage, response: ServerResponse) => {
    void (async () => {
      if (
        endpoint === 'apache'
          ? request.url?.split('?')[0] !== COBBLER_API_PATH
          : !rpcPaths.includes(request.url ?? '')
      ) {
        // Apache's own 404 page; cobblerd's is `SimpleXMLRPCRequestHandler.report_404`: text/plain "No such page".
        if (endpoint === 'apache') {
          response.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>Not Found</h1>');
        } else response.writeHead(404, { 'Content-Type': 'text/plain' }).end('No such page');
        return;
      }
      if (request.method !== 'POST') {
        response
          .writeHead(501, { 'Content-Type': 'text/html' })
          .end(`Unsupported method ('${request.method}')`);
        return;
      }
      const body = await readBody(request);
      const method = /<methodName>\s*([^<]*?)\s*<\/methodName>/.exec(body)?.[1] ?? '';
      const injected = takeFault(method, true);
      if (injected?.kind === 'drop') {
        calls.push({ method, params: [], injected: 'drop' });
        request.socket.destroy();
        return;
      }
      if (injected?.kind === 'http') {
        calls.push({ method, params: [], injected: 'http' });
        response
          .writeHead(injected.status, { 'Content-Type': 'text/html' })
          .end(injected.body ?? `<html><body><h1>${injected.status}</h1></body></html>`);
        return;
      }
      if (injected?.kind === 'delay') await sleep(injected.ms);
      if (method !== '' && server.listenerCount(method) === 0) server.once(method, unknownMethod(method));
      const replay = new PassThrough();
      replay.end(body);
      libraryHandler(replay as unknown as IncomingMessage, response);
    })().catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });

  await started;
  const port = (http.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}${endpoint === 'apache' ? COBBLER_API_PATH : '/'}`,
    port,
    calls,
    callCounts: () => {
      const counts: Record<string, number> = {};
      for (const call of calls) counts[call.method] = (counts[call.method] ?? 0) + 1;
      return counts;
    },
    systems: () => model.systems(),
    system: (name) => model.systems().find((s) => s.name === name),
    liveSystem: (name) => model.liveSystem(name),
    pxeFiles: () => model.pxeFiles(),
    setSyncFailure: (reason) => {
      model.setSyncFailure(reason);
    },
    restart: () => {
      model.restart();
    },
    addSystem: (seed) => {
      model.addSystem(seed);
    },
    addProfile: (name) => {
      model.addProfile(name);
    },
    syncs: () => model.syncs,
    injectFault: (method, fault, times = 1) => {
      const spec: InjectedFault =
        typeof fault === 'string' ? { kind: 'fault', faultString: cx(fault).faultString } : fault;
      const queue = faults.get(method) ?? [];
      queue.push({ fault: spec, remaining: times });
      faults.set(method, queue);
    },
    clearFaults: () => {
      faults.clear();
    },
    setTokenTtl: (ms) => {
      model.setTokenTtl(ms);
    },
    expireTokens: () => {
      model.expireTokens();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (!http.listening) {
          resolve();
          return;
        }
        http.close(() => {
          resolve();
        });
        http.closeAllConnections();
      }),
    start: () =>
      new Promise<void>((resolve, reject) => {
        if (http.listening) {
          resolve();
          return;
        }
        http.once('error', reject);
        http.listen(port, '127.0.0.1', () => {
          http.off('error', reject);
          resolve();
        });
      }),
  };
}
