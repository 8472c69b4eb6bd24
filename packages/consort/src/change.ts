/**
 * Following a change: send it, then draw its job live to the end (or print its id with `--no-wait`), or with
 * `--explain` print the plan round by round and change nothing.
 */
import type { Argv } from 'yargs';
import type { Answer, Client } from './client.js';
import type { GlobalOptions } from './command-line.js';
import { show, showData } from './command-line.js';
import { EXIT } from './errors.js';
import { table } from './render.js';
import type { JobView } from './watch.js';
import { watchJob } from './watch.js';

/** A plan as the API answers an `?explain=true` change. */
interface PlanView {
  outcome: string;
  rounds: {
    round: number;
    tasks: {
      provider: string;
      updates: { id: string; path: string; op: string }[];
      outcome?: Record<string, unknown>;
    }[];
  }[];
  later: { path: string; provider: string }[];
  blockedOn: { provider: string; path: string; reason?: string }[];
  failure?: { message: string };
}

/** A plan as a table of what each provider would do in each round, with its outcome under it. */
function planTable(plan: PlanView): string {
  const rows: string[][] = [];
  for (const round of plan.rounds) {
    for (const task of round.tasks) {
      const outcome = (task.outcome ?? {}) as {
        operations?: { action: string; target: string; detail?: string }[];
        deferred?: { id: string; reason: string }[];
        rejected?: { id: string; reason: string }[];
        later?: string[];
      };
      const pathOf = (id: string): string => task.updates.find((u) => u.id === id)?.path ?? id;
      const doing = [
        ...(outcome.operations ?? []).map(
          (o) => `${o.action} ${o.target}${o.detail === undefined ? '' : `: ${o.detail}`}`,
        ),
        ...(outcome.deferred ?? []).map((d) => `waits (${pathOf(d.id)}): ${d.reason}`),
        ...(outcome.rejected ?? []).map((r) => `refuses ${pathOf(r.id)}: ${r.reason}`),
      ];
      const later = (outcome.later ?? []).join(', ');
      if (doing.length === 0) doing.push(task.updates.map((u) => `${u.op} ${u.path}`).join(', '));
      doing.forEach((text, i) =>
        rows.push(i === 0 ? [String(round.round), task.provider, text, later] : ['', '', text, '']),
      );
    }
  }
  const footer = [
    `plan: ${plan.outcome}${plan.failure === undefined ? '' : ` (${plan.failure.message})`}`,
    ...plan.blockedOn.map(
      (b) => `blocked on ${b.provider}: ${b.path}${b.reason === undefined ? '' : ` (${b.reason})`}`,
    ),
    ...(plan.later.length === 0
      ? []
      : [`known later: ${plan.later.map((l) => `${l.path} (${l.provider})`).join(', ')}`]),
  ];
  return `${table(['ROUND', 'PROVIDER', 'WOULD DO', 'LATER'], rows)}\n${footer.join('\n')}`;
}

/** Sends a change with `client` and, unless told not to, follows its job to the end; returns the exit code. */
export async function change(
  client: Client,
  argv: GlobalOptions & { wait: boolean; explain?: boolean | undefined },
  send: (client: Client, query: string) => Promise<Answer>,
): Promise<number> {
  if (argv.explain === true) {
    const answer = await send(client, '?explain=true');
    const body = answer.body as { plan: PlanView };
    show(argv, body, () => planTable(body.plan));
    const { plan } = body;
    if (plan.outcome === 'succeeded') return EXIT.ok;
    // A plan that would not converge is a failure for scripts too: exit 1, and say why on stderr.
    const why =
      plan.outcome === 'blocked'
        ? plan.blockedOn
            .map((b) => `${b.provider} waits on ${b.path}${b.reason === undefined ? '' : ` (${b.reason})`}`)
            .join('; ')
        : (plan.failure?.message ?? 'no reason given');
    process.stderr.write(
      `consort: the change would ${plan.outcome === 'blocked' ? 'block' : 'fail'}: ${why}\n`,
    );
    return EXIT.failed;
  }
  const answer = await send(client, '');
  if (answer.status === 200 && (answer.body as { unchanged?: boolean }).unchanged === true) {
    show(argv, answer.body, () => 'no change: the node already holds every value');
    return EXIT.ok;
  }
  const job = answer.body as JobView;
  if (!argv.wait) {
    show(argv, job, () => job.id);
    return EXIT.ok;
  }
  const tabular = argv.output.format === 'table';
  const interactive = tabular && process.stderr.isTTY && process.stdout.isTTY;
  const final = await watchJob(client, job, {
    out: tabular ? process.stdout : process.stderr,
    interactive,
  });
  showData(argv, final);
  if (final.state !== 'succeeded') {
    const reason = final.failure === undefined ? final.state : final.failure.message;
    process.stderr.write(`consort: job ${final.id} ${final.state}: ${reason}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** Adds `--wait` (`--no-wait`) and `--explain` to a command that changes nodes. */
export function changeOptions<T>(y: Argv<T>) {
  return y
    .option('wait', {
      type: 'boolean',
      default: true,
      describe: 'follow the job live (--no-wait prints its id)',
    })
    .option('explain', { type: 'boolean', describe: 'show the plan round by round; change nothing' });
}
