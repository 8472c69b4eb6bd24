/** The web role as a runnable: serves the API until its signal aborts, then drains connections. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Runnable } from '../runnable.js';

/** Serves an express app on host:port; `onListening` gets the URL once bound. */
export class WebServer implements Runnable {
  readonly name = 'web';
  readonly needsLeader = false;

  constructor(
    private readonly app: express.Express,
    private readonly host: string,
    private readonly port: number,
    private readonly onListening: (url: string) => void,
    private readonly drainMs = 5_000,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    const server = createServer(this.app);
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = server.address() as AddressInfo;
    this.onListening(`http://${address.includes(':') ? `[${address}]` : address}:${port}`);
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
