/**
 * What the cluster tests' process starters share (`cluster.ts` on one host, `multihost.ts` across a lab): the
 * output a spawned `consortium` process leaves, finding the master that leads, and the plugins both clusters load.
 */
import type { ChildProcess } from 'node:child_process';

/** What a spawned process wrote, kept as it arrives. */
export interface ProcessOutput {
  /** Everything it wrote on stderr (JSON log lines, or its one-line refusal). */
  log(): string;
  /** What it printed on stdout (its `url:` line). */
  out(): string;
  /** Parsed log lines whose message is `message`. */
  lines(message: string): Record<string, unknown>[];
}

/** Collects the stdout and stderr of `child` (spawned with both piped). */
export function captureOutput(child: ChildProcess): ProcessOutput {
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  return {
    log: () => stderr,
    out: () => stdout,
    lines: (message) =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line['message'] === message),
  };
}

/** A process that may be a master. */
interface MasterCandidate extends ProcessOutput {
  readonly role: string;
  readonly child: ChildProcess;
}

/**
 * The running master whose latest `leadership acquired` is the newest and not followed by a loss, polled every 50 ms
 * for up to `seconds`; throws when none leads by then.
 */
export async function leadingMaster<P extends MasterCandidate>(
  processes: readonly P[],
  seconds: number,
): Promise<P> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    let best: { proc: P; at: string } | undefined;
    for (const proc of processes) {
      if (proc.role !== 'master' || proc.child.exitCode !== null || proc.child.signalCode !== null) continue;
      const at = proc.lines('leadership acquired').at(-1)?.['timestamp'] as string | undefined;
      const lost = proc.lines('leadership lost; campaigning again').at(-1);
      if (at === undefined || (lost !== undefined && String(lost['timestamp']) > at)) continue;
      if (best === undefined || at > best.at) best = { proc, at };
    }
    if (best !== undefined) return best.proc;
    if (Date.now() > deadline) throw new Error('no master leads');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The plugins every test cluster loads: inventory, ipam and NetBox at `netboxUrl`. */
export function clusterPlugins(netboxUrl: string, netboxToken: string): unknown[] {
  return [
    { module: '@consortium/plugin-inventory', config: { hostAttributes: [] } },
    { module: '@consortium/plugin-ipam' },
    {
      module: '@consortium/plugin-netbox',
      config: { url: netboxUrl, token: netboxToken, timeoutMs: 30_000 },
    },
  ];
}
