/** `consort jobs list|show|watch|cancel`: the jobs that carry out changes, and following one live. */
import type { Argv } from 'yargs';
import type { ClientFor, GlobalOptions, RunCommand } from './command-line.js';
import { show, showData, urlPath } from './command-line.js';
import { EXIT } from './errors.js';
import { moreLine, pagingOptions, readPages } from './paging.js';
import { actorText, table } from './render.js';
import type { JobView } from './watch.js';
import { ended, watchJob } from './watch.js';

/** A round of a job as `jobs show` reads it. */
interface Round {
  round: number;
  tasks: {
    provider: string;
    attempts: number;
    durationMs?: number;
    error?: { message: string };
  }[];
}

/** `consort jobs ...`. */
export function jobCommands(y: Argv<GlobalOptions>, clientFor: ClientFor, run: RunCommand) {
  return y
    .command(
      'list',
      'recent jobs, newest first',
      (c) =>
        pagingOptions(c, 20)
          .option('state', {
            type: 'string',
            describe: 'comma separated: queued,running,succeeded,failed,expired,cancelled',
          })
          .option('kind', { type: 'string', describe: 'only jobs of this kind' })
          .option('name', { type: 'string', describe: 'only jobs of nodes with this name' })
          .example('$0 jobs list --state running', 'what is running now'),
      (a) =>
        run(async () => {
          const query = new URLSearchParams({ limit: String(a.limit) });
          if (a.state !== undefined) query.set('state', a.state);
          if (a.kind !== undefined) query.set('kind', a.kind);
          if (a.name !== undefined) query.set('name', a.name);
          const page = await readPages<JobView & { roundCount: number; actor?: unknown }>(
            clientFor(a),
            `/api/jobs?${query.toString()}`,
            a,
          );
          show(a, page, () => ({
            headers: ['ID', 'NODE', 'ACTION', 'STATE', 'ROUNDS', 'BY', 'CREATED'],
            rows: page.items.map((j) => [
              j.id,
              `${j.kind}/${j.name}`,
              j.action,
              j.state,
              String(j.roundCount),
              actorText(j.actor as Parameters<typeof actorText>[0]),
              j.createdAt,
            ]),
            empty: 'no jobs match',
            footer: moreLine(page.next),
          }));
          return EXIT.ok;
        }),
    )
    .command(
      'show <id>',
      'one job with its rounds and conditions',
      (c) =>
        c
          .positional('id', { type: 'string', demandOption: true, describe: 'the job id (jobs list)' })
          .example('$0 jobs show j-abc -o yaml', 'as YAML'),
      (a) =>
        run(async () => {
          const job = (await clientFor(a).request('GET', `/api/jobs/${urlPath(a.id)}`)).body as Omit<
            JobView,
            'rounds'
          > & {
            rounds: Round[];
            actor?: { id: string; description: string | null };
          };
          show(a, job, () => {
            const rows = job.rounds.flatMap((r) =>
              r.tasks.map((t) => [
                String(r.round),
                t.provider,
                String(t.attempts),
                t.durationMs === undefined ? '' : `${t.durationMs}ms`,
                t.error?.message ?? '',
              ]),
            );
            const conditions = (job.conditions ?? []).map(
              (c) =>
                `waiting on ${c.provider}: ${c.path} (${c.status}${c.reason === undefined ? '' : `: ${c.reason}`})`,
            );
            return [
              `job ${job.id}: ${job.action} ${job.kind}/${job.name}: ${job.state}`,
              `by ${actorText(job.actor)}`,
              table(['ROUND', 'PROVIDER', 'ATTEMPTS', 'TOOK', 'ERROR'], rows),
              ...conditions,
              ...(job.failure === undefined ? [] : [`failure: ${job.failure.message}`]),
            ].join('\n');
          });
          return job.state === 'failed' || job.state === 'expired' ? EXIT.failed : EXIT.ok;
        }),
    )
    .command(
      'watch <id>',
      'follow a job live until it ends',
      (c) =>
        c
          .positional('id', { type: 'string', demandOption: true, describe: 'the job id (jobs list)' })
          .example('$0 jobs watch j-abc', 'follow it'),
      (a) =>
        run(async () => {
          const client = clientFor(a);
          const job = (await client.request('GET', `/api/jobs/${urlPath(a.id)}`)).body as JobView;
          const tabular = a.output.format === 'table';
          const interactive = tabular && process.stdout.isTTY;
          const final = ended(job.state)
            ? job
            : await watchJob(client, job, {
                out: tabular ? process.stdout : process.stderr,
                interactive,
              });
          if (!tabular) showData(a, final);
          else if (ended(job.state)) process.stdout.write(`${job.state}\n`);
          if (final.state !== 'succeeded') {
            process.stderr.write(
              `consort: job ${final.id} ${final.state}: ${final.failure?.message ?? final.state}\n`,
            );
            return EXIT.failed;
          }
          return EXIT.ok;
        }),
    )
    .command(
      'cancel <id>',
      'ask the master to cancel a job',
      (c) =>
        c
          .positional('id', { type: 'string', demandOption: true, describe: 'the job id (jobs list)' })
          .example('$0 jobs cancel j-abc', 'stop it'),
      (a) =>
        run(async () => {
          const job = (await clientFor(a).request('POST', `/api/jobs/${urlPath(a.id)}/cancel`))
            .body as JobView;
          show(a, job, () => `cancel requested for ${job.id}`);
          return EXIT.ok;
        }),
    )
    .demandCommand(1, 'name a jobs command: list, show, watch, cancel');
}
