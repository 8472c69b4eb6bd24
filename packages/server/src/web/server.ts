/** The web role as a runnable: serves the API until its signal aborts, then drains connections. */
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Runnable } from '../runnable.js';

/** The certificate (chain) and private key a server presents, PEM contents. */
export interface ServerTls {
  readonly cert: string;
  readonly key: string;
}

/** Serves an express app on host:port (HTTPS when given `tls`); `onListening` gets the URL once bound. */
export class WebServer implements Runnable {
  readonly name = 'web';
  readonly needsLeader = false;

  constructor(
    private readonly app: express.Express,
    private readonly host: string,
    private readonly port: number,
    private readonly onListening: (url: string) => void,
    private readonly drainMs = 5_000,
    private readonly tls?: ServerTls,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    const server =
      this.tls === undefined
        ? createServer(this.app)
        : createHttpsServer({ cert: this.tls.cert, key: this.tls.key }, this.app);
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
