/**
 * The live view of a job: one line per thing that happens (round, provider, operation, elapsed), and on a
 * terminal a status line redrawn in place. Ctrl-C stops watching, never the job.
 */
import { createParser } from 'eventsource-parser';
import type { JobView } from '@consortium/core';
import type { Client } from './client.js';
import { CliError, EXIT } from './errors.js';
import { duration, plural } from './render.js';

/** A job as the API shows it (the wire type the server writes). */
export type { JobView } from '@consortium/core';

/** True for the states after which nothing happens. */
export function ended(state: string): boolean {
  return ['succeeded', 'failed', 'expired', 'cancelled'].includes(state);
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface Outcome {
  accepted?: string[];
  deferred?: { id: string; reason: string }[];
  rejected?: { id: string; reason: string }[];
  operations?: { action: string; target: string; detail?: string; durationMs?: number }[];
}

/** Follows a job's events until it ends; returns the ended job. Writes lines to `out` (stderr for -o json/yaml). */
export async function watchJob(
  client: Client,
  job: JobView,
  options: { out: NodeJS.WriteStream; interactive: boolean },
): Promise<JobView> {
  const { out } = options;
  const started = Date.parse(job.createdAt);
  const paths = new Map(job.updates.map((u, i) => [`u${i + 1}`, u.path]));
  let status = 'queued';
  let frame = 0;
  const drawStatus = (): void => {
    if (!options.interactive) return;
    out.write(
      `\r\x1b[2K${SPINNER[frame++ % SPINNER.length] ?? ''} ${status} · ${duration(Date.now() - started)}`,
    );
  };
  const line = (text: string): void => {
    if (options.interactive) out.write('\r\x1b[2K');
    out.write(`${text}\n`);
    drawStatus();
  };
  const timer = options.interactive ? setInterval(drawStatus, 100) : undefined;
  const stop = new AbortController();
  const isAborted = (): boolean => stop.signal.aborted;
  const onInterrupt = (): void => {
    if (timer !== undefined) clearInterval(timer);
    if (options.interactive) out.write('\r\x1b[2K');
    out.write(
      `stopped watching; job ${job.id} keeps running (consort jobs watch ${job.id}; cancel with consort jobs cancel ${job.id})\n`,
    );
    stop.abort();
  };
  process.once('SIGINT', onInterrupt);
  try {
    line(`job ${job.id}: ${job.action} ${job.kind}/${job.name}`);
    const response = await client.fetch('GET', `/api/jobs/${job.id}/events`, {
      headers: { accept: 'text/event-stream' },
    });
    if (response.statusCode !== 200) {
      response.resume();
      throw new CliError(`cannot follow job ${job.id}: HTTP ${String(response.statusCode)}`, EXIT.failed);
    }
    const progress = { done: false };
    const parser = createParser({
      onEvent(event) {
        const payload = JSON.parse(event.data) as { at: string; data: Record<string, unknown> };
        const at = duration(Date.parse(payload.at) - started).padStart(6);
        const data = payload.data;
        switch (event.event) {
          case 'state':
            status = String(data['state']);
            break;
          case 'dispatched': {
            const tasks = data['tasks'] as { provider: string; attempt: number }[];
            status = `round ${String(data['round'])} · ${tasks.map((t) => t.provider).join(', ')}`;
            line(
              `${at}  round ${String(data['round'])}: ${tasks.map((t) => (t.attempt > 1 ? `${t.provider} (attempt ${t.attempt})` : t.provider)).join(', ')}`,
            );
            break;
          }
          case 'task': {
            const round = /\/r(\d+)\//.exec(String(data['taskId']))?.[1] ?? '?';
            const provider = String(data['provider']);
            const prefix = `${at}  round ${round}  ${provider.padEnd(12)}`;
            const error = data['error'] as { message: string; retryable: boolean } | undefined;
            if (error !== undefined) {
              line(`${prefix} error: ${error.message}${error.retryable ? ' (will retry)' : ''}`);
              break;
            }
            const outcome = (data['outcome'] ?? {}) as Outcome;
            for (const op of outcome.operations ?? []) {
              const took = op.durationMs === undefined ? '' : ` (${duration(op.durationMs)})`;
              line(
                `${prefix} ${op.action} ${op.target}${op.detail === undefined ? '' : `: ${op.detail}`}${took}`,
              );
            }
            for (const d of outcome.deferred ?? [])
              line(`${prefix} waits: ${paths.get(d.id) ?? d.id}: ${d.reason}`);
            for (const r of outcome.rejected ?? [])
              line(`${prefix} rejected ${paths.get(r.id) ?? r.id}: ${r.reason}`);
            break;
          }
          case 'ended':
            progress.done = true;
            break;
          default:
            break;
        }
      },
    });
    response.setEncoding('utf8');
    stop.signal.addEventListener('abort', () => response.destroy(), { once: true });
    try {
      for await (const chunk of response) {
        parser.feed(chunk as string);
        if (progress.done) break;
      }
    } catch (error) {
      if (!isAborted()) throw error;
    }
    response.destroy();
    if (isAborted()) throw new CliError('', EXIT.interrupted);
    const final = (await client.request('GET', `/api/jobs/${job.id}${progress.done ? '' : '?wait=10m'}`))
      .body as JobView;
    if (timer !== undefined) clearInterval(timer);
    if (options.interactive) out.write('\r\x1b[2K');
    const took = final.endedAt === undefined ? '' : ` in ${duration(Date.parse(final.endedAt) - started)}`;
    out.write(`${final.state}${took} (${plural(final.rounds?.length ?? 0, 'round')})\n`);
    return final;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    process.off('SIGINT', onInterrupt);
  }
}
