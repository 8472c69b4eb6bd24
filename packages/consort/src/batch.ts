/**
 * `consort set <kind> -l '<query>' ...` and `consort delete <kind> -l ...`: one change for many nodes, as a batch.
 * `--dry-run` shows what every node's plan would do; otherwise the batch is followed to its end (a progress bar with
 * counts on a terminal, a line per change of the counts otherwise), and the nodes that did not succeed are listed
 * with their reasons. Exit 0 when every node succeeded, 1 otherwise.
 */
import cliProgress from 'cli-progress';
import type { Client } from './client.js';
import { EXIT } from './errors.js';
import type { Output } from './render.js';
import { printValue, table } from './render.js';

/** What a batch command asks for. */
export interface BatchOptions {
  readonly kind: string;
  readonly selector: string;
  /** The change (a patch), or undefined for a delete. */
  readonly updates?: readonly unknown[];
  readonly concurrency?: number | undefined;
  readonly failureBudget?: string | undefined;
  readonly dryRun: boolean;
  readonly output: Output;
  /** Where the progress is drawn; a terminal gets the bar. */
  readonly out?: NodeJS.WriteStream;
}

/** A batch as the server shows it (the parts consort reads). */
interface BatchView {
  id: string;
  kind: string;
  action: string;
  state: string;
  total: number;
  concurrency: number;
  failureBudget: number;
  stopped?: string;
  counts: Record<string, number>;
  nodes?: { name: string; job: string; state: string; reason?: string }[];
}

const ENDED = ['succeeded', 'failed', 'cancelled'];

function body(options: BatchOptions): Record<string, unknown> {
  const budget = options.failureBudget;
  return {
    kind: options.kind,
    selector: options.selector,
    ...(options.updates === undefined ? { delete: true } : { updates: options.updates }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(budget === undefined ? {} : { failureBudget: /^\d+$/.test(budget) ? Number(budget) : budget }),
  };
}

/** One line of counts: `12/30 done · 5 running · 1 failed`. */
export function countsLine(batch: Pick<BatchView, 'total' | 'counts'>): string {
  const c = batch.counts;
  const n = (key: string): number => c[key] ?? 0;
  const done = n('succeeded') + n('failed') + n('expired') + n('cancelled');
  const parts = [
    `${done}/${batch.total} done`,
    `${n('succeeded')} succeeded`,
    `${n('queued') + n('running')} running`,
  ];
  if (n('held') > 0) parts.push(`${n('held')} waiting`);
  if (n('failed') + n('expired') > 0) parts.push(`${n('failed') + n('expired')} failed`);
  if (n('cancelled') > 0) parts.push(`${n('cancelled')} cancelled`);
  return parts.join(' · ');
}

/** Runs a batch command; returns the exit code. */
export async function runBatch(client: Client, options: BatchOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  if (options.dryRun) {
    const answer = await client.request('POST', '/api/batches?explain=true', { body: body(options) });
    const plan = answer.body as {
      total: number;
      counts: Record<string, number>;
      nodes: { name: string; outcome: string; reason?: string }[];
    };
    if (options.output.format !== 'table') printValue(plan, options.output);
    else {
      out.write(
        `${table(
          ['NAME', 'WOULD', 'WHY'],
          plan.nodes.map((n) => [
            n.name,
            n.outcome === 'refused'
              ? 'be refused'
              : n.outcome === 'blocked'
                ? 'block'
                : n.outcome === 'failed'
                  ? 'fail'
                  : 'succeed',
            n.reason ?? '',
          ]),
        )}\n`,
      );
      const c = plan.counts;
      out.write(
        `${plan.total} ${options.kind} nodes: ${c['succeeded'] ?? 0} would succeed, ${c['blocked'] ?? 0} would block, ${c['failed'] ?? 0} would fail, ${c['refused'] ?? 0} would be refused\n`,
      );
    }
    return plan.total === (plan.counts['succeeded'] ?? 0) ? EXIT.ok : EXIT.failed;
  }
  const created = await client.request('POST', '/api/batches', { body: body(options) });
  let batch = created.body as BatchView;
  const log = (line: string): void => {
    (options.output.format === 'table' ? out : process.stderr).write(`${line}\n`);
  };
  log(
    `batch ${batch.id}: ${batch.action} ${batch.total} ${batch.kind} nodes, ${batch.concurrency} at a time, stopping after ${batch.failureBudget} failed`,
  );
  const bar =
    out.isTTY && options.output.format === 'table'
      ? new cliProgress.SingleBar(
          {
            format: '{bar} {line}',
            barsize: 24,
            hideCursor: true,
            clearOnComplete: false,
            stream: out,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  const doneOf = (b: BatchView): number =>
    ['succeeded', 'failed', 'expired', 'cancelled'].reduce((sum, key) => sum + (b.counts[key] ?? 0), 0);
  bar?.start(batch.total, doneOf(batch), { line: countsLine(batch) });
  let last = '';
  const interrupted = new Promise<'interrupted'>((resolve) => {
    process.once('SIGINT', () => {
      resolve('interrupted');
    });
  });
  for (;;) {
    const line = countsLine(batch);
    if (bar !== undefined) bar.update(doneOf(batch), { line });
    else if (line !== last && options.output.format === 'table') log(line);
    last = line;
    if (ENDED.includes(batch.state)) break;
    const next = await Promise.race([new Promise((r) => setTimeout(r, 300)), interrupted]);
    if (next === 'interrupted') {
      bar?.stop();
      process.stderr.write(
        `consort: stopped watching; batch ${batch.id} keeps running (cancel it: consort batches cancel ${batch.id})\n`,
      );
      return EXIT.interrupted;
    }
    batch = (await client.request('GET', `/api/batches/${encodeURIComponent(batch.id)}`)).body as BatchView;
  }
  bar?.stop();
  if (options.output.format !== 'table') printValue(batch, options.output);
  else {
    const unfinished = (batch.nodes ?? []).filter((n) => n.state !== 'succeeded');
    if (unfinished.length > 0)
      out.write(
        `${table(
          ['NAME', 'STATE', 'REASON', 'JOB'],
          unfinished.map((n) => [n.name, n.state, n.reason ?? '', n.job]),
        )}\n`,
      );
    const why =
      batch.stopped === 'budget'
        ? ' (failure budget spent)'
        : batch.stopped === 'cancel'
          ? ' (cancelled)'
          : '';
    out.write(`batch ${batch.state}${why}: ${countsLine(batch)}\n`);
  }
  return batch.state === 'succeeded' ? EXIT.ok : EXIT.failed;
}
