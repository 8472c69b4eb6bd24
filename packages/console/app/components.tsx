/** Pieces every page uses: the error banner, the plan's rounds, job states, times. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { ActorView, JsonValue, RoundRecord } from '@consortium/core';
import { ApiError, messageOf } from './api.js';
import { href, navigate } from './router.js';
import { display } from './schema.js';

/** An error shown plainly: a refused role (403) says so; anything else gives the server's detail and code. */
export function ErrorBanner({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  const forbidden = error instanceof ApiError && error.status === 403;
  return (
    <div class="banner error" role="alert">
      {forbidden ? <strong>Not allowed: </strong> : <strong>Error: </strong>}
      {messageOf(error)}
    </div>
  );
}

/** A page's heading; it takes the focus when the page opens, so that keyboard and screen reader users start there. */
export function PageTitle({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

/** A job state as a coloured badge. */
export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/** A time as the browser's local time, the ISO text as its title. */
export function Time({ at }: { at: string | number | undefined }) {
  if (at === undefined) return <span class="muted">—</span>;
  const date = new Date(at);
  return (
    <time dateTime={date.toISOString()} title={date.toISOString()}>
      {date.toLocaleString()}
    </time>
  );
}

/** A duration in ms as `850 ms`, `2.4 s`, `3 min`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** What one provider did in one round, as the plan and the job's events report it. */
export interface TaskLine {
  readonly provider: string;
  readonly updates?: readonly {
    readonly id?: string;
    readonly path: string;
    readonly op: string;
    readonly value?: JsonValue;
  }[];
  readonly updateIds?: readonly string[];
  readonly outcome?: {
    readonly accepted?: readonly string[];
    readonly deferred?: readonly { readonly id: string; readonly reason: string }[];
    readonly rejected?: readonly { readonly id: string; readonly reason: string }[];
    readonly set?: Readonly<Record<string, JsonValue>>;
    readonly later?: readonly string[];
    readonly operations?: readonly { action: string; target: string; detail?: string; durationMs?: number }[];
  };
  readonly error?: { readonly code: string; readonly message: string };
  readonly durationMs?: number;
  readonly running?: boolean;
}

/** One round: its number and its providers' tasks. */
export interface RoundLine {
  readonly round: number;
  readonly tasks: readonly TaskLine[];
}

/** Who did something, as people read it: `ci pipeline (3f9a1c0b7d2e)`, or the bare id without a description. */
export function actorText(actor: ActorView | string): string {
  if (typeof actor === 'string') return actor;
  return actor.description === null ? actor.id : `${actor.description} (${actor.id})`;
}

/** Rounds of a plan or job as the console draws them. */
export function roundsOf(rounds: readonly Pick<RoundRecord, 'round' | 'tasks'>[]): RoundLine[] {
  return rounds.map((r) => ({
    round: r.round,
    tasks: r.tasks.map((t) => ({
      provider: t.provider,
      updates: t.updates,
      ...(t.outcome === undefined ? {} : { outcome: t.outcome }),
      ...(t.error === undefined ? {} : { error: t.error }),
      ...(t.durationMs === undefined ? {} : { durationMs: t.durationMs }),
    })),
  }));
}

/** The rounds of a plan or a job, each provider's updates, operations (with durations), deferrals and why. */
export function Rounds({ rounds, label }: { rounds: readonly RoundLine[]; label: string }) {
  if (rounds.length === 0) return <p class="muted">No rounds yet.</p>;
  return (
    <ol class="rounds" aria-label={label}>
      {rounds.map((round) => (
        <li class="round" key={round.round} data-round={round.round}>
          <h3>Round {round.round}</h3>
          <ul class="tasks">
            {round.tasks.map((task) => (
              <li class="task" key={task.provider} data-provider={task.provider}>
                <div class="task-head">
                  <strong>{task.provider}</strong>{' '}
                  {task.running === true ? (
                    <span class="badge state-running">running</span>
                  ) : (
                    <span class="muted">{duration(task.durationMs)}</span>
                  )}
                </div>
                {task.updates !== undefined && task.updates.length > 0 ? (
                  <ul class="updates">
                    {task.updates.map((u, i) => (
                      <li key={i}>
                        <code>
                          {u.op} {u.path}
                          {u.value === undefined ? '' : ` = ${display(u.value)}`}
                        </code>
                      </li>
                    ))}
                  </ul>
                ) : null}
                {task.outcome?.operations?.map((op, i) => (
                  <div class="operation" key={i}>
                    ▸ {op.action} <code>{op.target}</code> {op.detail ?? ''}{' '}
                    <span class="muted">{duration(op.durationMs)}</span>
                  </div>
                ))}
                {Object.entries(task.outcome?.set ?? {}).map(([path, value]) => (
                  <div class="set" key={path}>
                    sets <code>{path}</code> = <code>{display(value)}</code>
                  </div>
                ))}
                {task.outcome?.later?.map((path) => (
                  <div class="later" key={path}>
                    <code>{path}</code> known once applied
                  </div>
                ))}
                {task.outcome?.deferred?.map((d) => (
                  <div class="deferred" key={d.id}>
                    deferred {d.id}: {d.reason}
                  </div>
                ))}
                {task.outcome?.rejected?.map((d) => (
                  <div class="rejected" key={d.id}>
                    rejected {d.id}: {d.reason}
                  </div>
                ))}
                {task.error === undefined ? null : (
                  <div class="rejected">
                    {task.error.code}: {task.error.message}
                  </div>
                )}
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ol>
  );
}

/** A table's header row: one column heading per label; an empty label is an unlabelled actions column. */
export function ColumnHeads({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((label, i) => (
          <th scope="col" key={i}>
            {label === '' ? <span class="visually-hidden">Actions</span> : label}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** The "Next page" button under a cursor-paged list: it keeps the page's query and adds the cursor. */
export function NextPage({
  next,
  route,
  query,
}: {
  next: string | undefined;
  route: string;
  query: URLSearchParams;
}) {
  if (next === undefined) return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        onClick={() => {
          navigate(href(route, { ...Object.fromEntries(query), cursor: next }));
        }}
      >
        Next page
      </button>
    </nav>
  );
}
