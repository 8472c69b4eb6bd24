/**
 * Composition of a `consortium` process: opens the store, the coordinator and the plugins, and runs the roles.
 * `consortium dev` runs web, master and worker together over the embedded store and the in-process coordinator;
 * `consortium web|master|worker` run one role each, sharing the store and coordinating through etcd.
 */
import { readFileSync } from 'node:fs';
import express from 'express';
import type { Coordinator, Store } from '@consortium/core';
import { InputError, systemClock } from '@consortium/core';
import type { ConnectionOptions } from 'node:tls';
import { EtcdCoordinator } from '@consortium/coord-etcd';
import type { EtcdTls } from '@consortium/coord-etcd';
import { MemoryCluster, MemoryCoordinator } from '@consortium/coord-memory';
import type winston from 'winston';
import type { Config } from './config.js';
import { createLogger } from './logging.js';
import { BatchRunner } from './batch-runner.js';
import { Master } from './master.js';
import { Metrics } from './metrics.js';
import { HookSender } from './hook-sender.js';
import { HookPublisher } from './hooks.js';
import { Intake } from './intake.js';
import { Observer } from './observer.js';
import { Seeder } from './seeder.js';
import { openConfiguredStore, secretOf, tlsOptions } from './stores.js';
import type { Kinds } from './plugins.js';
import { buildKinds, importPlugins, pluginSeeds } from './plugins.js';
import type { Runnable } from './runnable.js';
import { runAll } from './runnable.js';
import { devAdminToken } from './tokens.js';
import { createApp } from './web/app.js';
import { BodyParserWorker } from './web/body.js';
import { WebServer, requestTimeouts } from './web/server.js';
import type { ServerTls } from './web/server.js';
import { Worker } from './worker.js';

/** This package's version, for the API and logs. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Hook deliveries one worker process sends at once. */
const HOOK_SENDERS = 4;

/** The roles a process can host. */
export type Role = 'web' | 'master' | 'worker';

/** Opens the store the config names (SQLite in the data dir by default); see `openConfiguredStore`. */
export async function openStore(config: Config): Promise<Store> {
  return openConfiguredStore(config);
}

/**
 * Makes the coordinator the config names. For etcd, `coordinator.tls` loads the CA and client certificate files and
 * `coordinator.auth` takes the password from `CONSORTIUM_ETCD_PASSWORD` or `passwordFile`; throws `InputError` when
 * a file cannot be read or a user has no password.
 */
export function openCoordinator(
  config: Config,
  logger: winston.Logger,
  env: NodeJS.ProcessEnv = process.env,
): Coordinator {
  const { coordinator } = config;
  if (coordinator.driver === 'etcd') {
    const tls = tlsOptions(coordinator.tls, 'etcd');
    const auth = coordinator.auth;
    const password =
      auth === undefined
        ? undefined
        : secretOf(env, 'CONSORTIUM_ETCD_PASSWORD', auth.passwordFile, 'etcd password file');
    if (auth !== undefined && password === undefined) {
      throw new InputError(
        `coordinator.auth names user ${auth.username} but no password: set CONSORTIUM_ETCD_PASSWORD or coordinator.auth.passwordFile`,
      );
    }
    return new EtcdCoordinator({
      endpoints: coordinator.endpoints ?? [],
      cluster: config.cluster,
      ...(coordinator.prefix === undefined ? {} : { prefix: coordinator.prefix }),
      ...(coordinator.leaseTtlSeconds === undefined ? {} : { leaseTtlSeconds: coordinator.leaseTtlSeconds }),
      ...(tls === undefined ? {} : { tls: etcdTls(tls) }),
      ...(auth === undefined || password === undefined
        ? {}
        : { auth: { username: auth.username, password } }),
      logger: logger.child({ component: 'etcd' }),
    });
  }
  // Fencing tokens start from the clock: jobs fenced by an earlier run of this data dir stay resumable.
  return new MemoryCoordinator(new MemoryCluster({ firstRevision: Date.now() }), {
    memberId: `dev-${process.pid}`,
  });
}

/** The PEM contents `tlsOptions` loaded, as the etcd coordinator takes them. */
function etcdTls(options: ConnectionOptions): EtcdTls {
  const pem = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const ca = pem(options.ca);
  const cert = pem(options.cert);
  const key = pem(options.key);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

/** The certificate and key `web.tls` names, read; undefined without it. Throws `InputError` for an unreadable file. */
function webTls(config: Config): ServerTls | undefined {
  const files = config.web.tls;
  if (files === undefined) return undefined;
  const loaded = tlsOptions({ cert: files.cert, key: files.key }, 'web');
  const cert = loaded?.cert;
  const key = loaded?.key;
  if (typeof cert !== 'string' || typeof key !== 'string') throw new InputError('web.tls needs cert and key');
  return { cert, key };
}

/** What a process reports once its web role listens (`token` only from `consortium dev`). */
export interface Ready {
  readonly url: string;
  readonly token?: string;
}

/** A running process: wait for it, or stop it (graceful first, hard on a second call). */
export interface RunningProcess {
  readonly done: Promise<void>;
  stop(): void;
}

/** Everything a process hosts, for tests that want to look inside. */
export interface ProcessParts {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly kinds: Kinds;
  readonly logger: winston.Logger;
}

/**
 * Opens the store and the coordinator the config names, and checks that etcd lets this process in; closes what it
 * opened when either fails.
 */
async function openConnections(
  config: Config,
  logger: winston.Logger,
): Promise<{ store: Store; coordinator: Coordinator }> {
  const store = await openStore(config);
  try {
    const coordinator = openCoordinator(config, logger);
    // A wrong CA, a missing client certificate or a wrong password would otherwise be retried for ever.
    if (coordinator instanceof EtcdCoordinator) {
      await coordinator.verifyAccess().catch(async (error: unknown) => {
        await coordinator.close();
        throw error;
      });
    }
    return { store, coordinator };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** The /healthz and /metrics server of a master or worker process. */
function metricsServer(
  config: Config,
  port: number,
  metrics: Metrics,
  tls: ServerTls | undefined,
  onListening: (url: string) => void,
): WebServer {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return new WebServer(app, config.web.host, port, onListening, undefined, requestTimeouts(config), tls);
}

/** Starts a process hosting `roles`; calls `onReady` once the web role listens (never without one). */
export async function startRoles(
  config: Config,
  roles: readonly Role[],
  onReady: (ready: Ready) => void,
  options: {
    readonly adminToken?: boolean;
    /** A process without the web role serves only /healthz and /metrics on this port, when given. */
    readonly metricsPort?: number;
  } = {},
): Promise<RunningProcess & ProcessParts> {
  if (roles.length === 0) throw new InputError('a process needs at least one role: web, master or worker');
  const logger = createLogger(config.log).child({ roles: roles.join(',') });
  const serverTls = webTls(config);
  const { store, coordinator } = await openConnections(config, logger);
  const clock = systemClock;
  const plugins = await importPlugins(config.plugins);
  const kinds = buildKinds(
    plugins,
    { logger, store, now: () => clock.now() },
    {
      maxRounds: config.planner.maxRounds,
      ttlMs: config.planner.ttlSeconds * 1000,
      maxTaskAttempts: config.planner.maxTaskAttempts,
    },
  );
  let leading = false;
  const metrics = new Metrics(
    coordinator,
    () => leading,
    () => (coordinator instanceof EtcdCoordinator ? coordinator.keepaliveLagMs : undefined),
  );
  const token =
    options.adminToken === true ? await devAdminToken(store, config.dataDir, clock.now()) : undefined;
  const stopping = new AbortController();
  const hardStop = new AbortController();
  const runnables: Runnable[] = [];
  // Masters publish the events of ended jobs and of drift; web processes those of adoptions (which have no job).
  const hooks = new HookPublisher({
    store,
    coordinator,
    kinds,
    clock,
    logger: logger.child({ component: 'hooks' }),
    maxAttempts: config.hooks.maxAttempts,
  });
  if (roles.includes('web')) {
    const bodyParser = new BodyParserWorker();
    await bodyParser.warm();
    const app = createApp({
      bodyParser,
      hooks,
      store,
      coordinator,
      kinds,
      logger,
      clock,
      metrics,
      bodyLimit: config.web.bodyLimit,
      version: VERSION,
      ...(config.web.trustProxy === undefined ? {} : { trustProxy: config.web.trustProxy }),
      ready: async () => {
        try {
          await store.getNode('host', 'readyz-probe');
          return true;
        } catch {
          return false;
        }
      },
    });
    runnables.push(
      new WebServer(
        app,
        config.web.host,
        config.web.port,
        (url) => {
          logger.info('listening', { url, kinds: [...kinds.keys()], dataDir: config.dataDir });
          onReady({ url, ...(token === undefined ? {} : { token }) });
        },
        undefined,
        requestTimeouts(config),
        serverTls,
      ),
    );
  }
  if (!roles.includes('web') && options.metricsPort !== undefined) {
    runnables.push(
      metricsServer(config, options.metricsPort, metrics, serverTls, (url) => {
        logger.info('metrics listening', { url });
        onReady({ url });
      }),
    );
  }
  if (roles.includes('master')) {
    const master = new Master({ store, coordinator, kinds, logger, clock, metrics, hooks });
    runnables.push({
      name: master.name,
      needsLeader: true,
      run: async (signal, leadership) => {
        leading = true;
        try {
          await master.run(signal, leadership);
        } finally {
          leading = false;
        }
      },
    });
    runnables.push(new BatchRunner({ store, coordinator, clock, logger }));
    runnables.push(
      new Observer({
        store,
        kinds,
        logger,
        clock,
        intervalMs: config.observe.intervalSeconds * 1000,
        hooks,
      }),
    );
    const seeds = pluginSeeds(plugins);
    if (seeds.length > 0) {
      const intake = new Intake({ store, coordinator, kinds, clock, logger });
      runnables.push(new Seeder({ store, intake, seeds, logger }));
    }
  }
  if (roles.includes('worker')) {
    runnables.push(
      new Worker({
        coordinator,
        kinds,
        logger,
        clock,
        concurrency: config.worker.concurrency,
        hardStop: hardStop.signal,
        metrics,
      }),
    );
    runnables.push(
      new HookSender({
        store,
        coordinator,
        clock,
        logger: logger.child({ component: 'hooks' }),
        maxAttempts: config.hooks.maxAttempts,
        maxFailures: config.hooks.maxFailures,
        timeoutMs: config.hooks.timeoutSeconds * 1000,
        concurrency: HOOK_SENDERS,
      }),
    );
  }
  const done = runAll(runnables, coordinator, logger, stopping.signal).finally(async () => {
    await coordinator.close();
    await store.close();
    logger.info('stopped');
  });
  return {
    done,
    store,
    coordinator,
    kinds,
    logger,
    stop: () => {
      if (stopping.signal.aborted) hardStop.abort();
      else stopping.abort();
    },
  };
}

/** What `startDev` reports once the server listens. */
export interface DevReady {
  readonly url: string;
  readonly token: string;
}

/** Starts `consortium dev`: all three roles in this process. Calls `onReady` with the URL and its admin token. */
export async function startDev(
  config: Config,
  onReady: (ready: DevReady) => void,
): Promise<RunningProcess & ProcessParts> {
  return startRoles(
    config,
    ['web', 'master', 'worker'],
    (ready) => {
      onReady({ url: ready.url, token: ready.token ?? '' });
    },
    {
      adminToken: true,
    },
  );
}
