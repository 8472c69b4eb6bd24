/**
 * @consortium/test-netbox-server: a NetBox-compatible REST server for tests (DESIGN.md §9). It serves the subset
 * Consortium uses (sites, cluster types, clusters, tenants, tags, virtual machines) with NetBox's token
 * authentication, pagination, filters and error bodies, on a free loopback port, and lets tests inject faults.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Fault, FaultEntry } from './app.js';
import { createApp } from './app.js';
import type { SeedData } from './state.js';
import { NetboxState } from './state.js';

export type { Fault } from './app.js';
export { NETBOX_VERSION } from './app.js';
export type {
  ClusterRecord,
  CustomFieldRecord,
  CustomFieldType,
  RequestRecord,
  SeedData,
  SiteRecord,
  TagRecord,
  TenantRecord,
  VirtualMachineRecord,
} from './state.js';
export { NetboxState, VM_STATUSES } from './state.js';

/** Options of `startNetboxServer`. */
export interface NetboxServerOptions {
  /** Tokens that may read and write; one random 40-hex-digit token when absent. */
  readonly tokens?: readonly string[];
  /** Tokens with "write enabled" off: reads only. */
  readonly readOnlyTokens?: readonly string[];
  /** NetBox's PAGINATE_COUNT: the page size without `?limit=` (default 50). */
  readonly paginateCount?: number;
  /** NetBox's MAX_PAGE_SIZE: the largest page `?limit=` may ask for (default 1000). */
  readonly maxPageSize?: number;
}

/** A fault once injected: tests wait on it to act while a request is inside it (for example in a slow answer). */
export interface InjectedFault {
  /** Resolves when the first matching request arrives (before any delay runs out). */
  readonly hit: Promise<void>;
}

/** A running test server. */
export interface NetboxServer {
  /** The base URL, `http://127.0.0.1:<port>`; the API is under `/api/`. */
  readonly url: string;
  /** The first token that may read and write. */
  readonly token: string;
  /** The server's data, for tests to inspect and change. */
  readonly state: NetboxState;
  /** Answers the next matching requests with a fault (a 503 from the proxy, a 400, a slow answer, ...). */
  injectFault(fault: Fault): InjectedFault;
  /** Drops faults not yet used. */
  clearFaults(): void;
  /** Creates sites, clusters, tenants, tags, custom fields and VMs by their natural keys. */
  seed(data: SeedData): void;
  /** Turns NetBox's MAINTENANCE_MODE on or off: reads still work, writes fail with a 500. */
  setMaintenance(on: boolean): void;
  /** Closes the server and every open connection. */
  stop(): Promise<void>;
}

/** Starts a test server on a free port of 127.0.0.1. */
export async function startNetboxServer(options: NetboxServerOptions = {}): Promise<NetboxServer> {
  const state = new NetboxState();
  const tokens = new Set(options.tokens ?? [randomBytes(20).toString('hex')]);
  const readOnlyTokens = new Set(options.readOnlyTokens ?? []);
  const faults: FaultEntry[] = [];
  const app = createApp({
    state,
    tokens: () => tokens,
    readOnlyTokens: () => readOnlyTokens,
    faults,
    pagination: { paginateCount: options.paginateCount ?? 50, maxPageSize: options.maxPageSize ?? 1000 },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(0, '127.0.0.1', (error?: Error) => {
      if (error === undefined) resolve(listening);
      else reject(error);
    });
  });
  const { port } = server.address() as AddressInfo;
  const token = [...tokens][0];
  if (token === undefined) throw new Error('startNetboxServer: tokens must not be empty');
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    state,
    injectFault: (fault) => {
      let onHit = (): void => undefined;
      const hit = new Promise<void>((resolve) => {
        onHit = resolve;
      });
      faults.push({ fault, left: fault.times ?? 1, onHit });
      return { hit };
    },
    clearFaults: () => {
      faults.length = 0;
    },
    seed: (data) => {
      state.seed(data);
    },
    setMaintenance: (on) => {
      state.maintenance = on;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
        server.closeAllConnections();
      }),
  };
}
