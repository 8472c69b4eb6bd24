/** Small timing helpers for the benchmarks: warm up, run for a while, report the rate and the mean. */
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One measured figure. */
export interface Measurement {
  readonly name: string;
  readonly iterations: number;
  readonly opsPerSecond: number;
  readonly meanMicros: number;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and measures it. */
export async function measure(name: string, fn: () => unknown, ms = 1_000): Promise<Measurement> {
  const warmUntil = performance.now() + ms / 5;
  while (performance.now() < warmUntil) await fn();
  let iterations = 0;
  const start = performance.now();
  const until = start + ms;
  while (performance.now() < until) {
    for (let i = 0; i < 16; i++) await fn();
    iterations += 16;
  }
  const elapsed = performance.now() - start;
  return {
    name,
    iterations,
    opsPerSecond: (iterations / elapsed) * 1000,
    meanMicros: (elapsed * 1000) / iterations,
  };
}

/** Prints measurements as an aligned table. */
export function report(title: string, rows: readonly Measurement[]): void {
  console.log(`\n${title}`);
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(58)} ${row.opsPerSecond.toFixed(0).padStart(10)} ops/s ${row.meanMicros.toFixed(2).padStart(10)} µs/op`,
    );
  }
}

/**
 * Measures a request/response round trip over loopback TCP: the floor of any networked round trip, such as one
 * to etcd. Used as the baseline the planner's own cost is compared against.
 */
export async function loopbackRoundTrip(ms = 1_000): Promise<Measurement> {
  const server = createServer((socket) => socket.on('data', (data) => socket.write(data)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const ping = (): Promise<void> =>
    new Promise((resolve) => {
      socket.once('data', () => {
        resolve();
      });
      socket.write('x');
    });
  const result = await measure('loopback TCP round trip (etcd floor)', ping, ms);
  socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  return result;
}
