/** The web role as a runnable: serves the API until its signal aborts, then drains connections. */
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Config } from '../config.js';
import type { Runnable } from '../runnable.js';

/** The certificate (chain) and private key a server presents, PEM contents. */
export interface ServerTls {
  readonly cert: string;
  readonly key: string;
}

/** How long a client may take to send a request; a stalled one gets 408 and its connection closed. */
export interface RequestTimeouts {
  /** From the connection (or the previous request) until the headers are complete. */
  readonly headersMs: number;
  /** From the connection until the whole request, body included, has arrived; greater than `headersMs`. */
  readonly requestMs: number;
}

/** The timeouts of a web server unless configured: ten seconds for headers, thirty for a whole request. */
export const DEFAULT_REQUEST_TIMEOUTS: RequestTimeouts = { headersMs: 10_000, requestMs: 30_000 };

/** The request timeouts a config asks for. */
export function requestTimeouts(config: Pick<Config, 'web'>): RequestTimeouts {
  return {
    headersMs: config.web.headersTimeoutSeconds * 1000,
    requestMs: config.web.requestTimeoutSeconds * 1000,
  };
}

/**
 * Serves an express app on host:port (HTTPS when given `tls`); `onListening` gets the URL once bound. A request whose body never arrives
 * in full (a `Content-Length` larger than what is sent) is answered 408 after `timeouts.requestMs` instead of
 * holding its connection until the client gives up; a response being streamed (long polls, event streams) is not
 * limited, as the request it answers has arrived.
 */
export class WebServer implements Runnable {
  readonly name = 'web';
  readonly needsLeader = false;

  constructor(
    private readonly app: express.Express,
    private readonly host: string,
    private readonly port: number,
    private readonly onListening: (url: string) => void,
    private readonly drainMs = 5_000,
    private readonly timeouts: RequestTimeouts = DEFAULT_REQUEST_TIMEOUTS,
    private readonly tls?: ServerTls,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    const options = {
      headersTimeout: this.timeouts.headersMs,
      requestTimeout: this.timeouts.requestMs,
      // How often node looks for stalled requests (default 30 s, which would add up to 30 s to each timeout).
      connectionsCheckingInterval: Math.min(1_000, this.timeouts.headersMs),
    };
    const server =
      this.tls === undefined
        ? createServer(options, this.app)
        : createHttpsServer({ ...options, cert: this.tls.cert, key: this.tls.key }, this.app);
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = server.address() as AddressInfo;
    const scheme = this.tls === undefined ? 'http' : 'https';
    this.onListening(`${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`);
    if (!signal.aborted)
      await new Promise((resolve) => {
        signal.addEventListener('abort', resolve, { once: true });
      });
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeIdleConnections();
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, this.drainMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}
