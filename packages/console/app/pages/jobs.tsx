/**
 * Jobs: the list with filters, and one job drawn live from its event stream: each round's providers, their
 * updates, operations with durations, deferrals and why, the failure; who blocks a waiting job and until when its
 * TTL lets it run; cancel.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobEventView, JobView, JsonValue, PageView } from '@consortium/core';
import { followEvents, request } from '../api.js';
import type { RoundLine, TaskLine } from '../components.js';
import {
  ColumnHeads,
  ErrorBanner,
  NextPage,
  PageTitle,
  Rounds,
  StateBadge,
  Time,
  actorText,
  duration,
  roundsOf,
} from '../components.js';
import { href, navigate } from '../router.js';
import type { Route } from '../router.js';

const STATES = ['queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'];
const TERMINAL = ['succeeded', 'failed', 'expired', 'cancelled'];

/** The jobs list. */
export function JobsPage({ route }: { route: Route }) {
  const [page, setPage] = useState<PageView<JobView>>();
  const [error, setError] = useState<unknown>();
  const query = route.query;
  const [form, setForm] = useState({
    state: query.get('state') ?? '',
    kind: query.get('kind') ?? '',
    name: query.get('name') ?? '',
  });
  useEffect(() => {
    const params = new URLSearchParams();
    for (const key of ['state', 'kind', 'name', 'cursor']) {
      const value = query.get(key);
      if (value !== null && value !== '') params.set(key, value);
    }
    setError(undefined);
    request<PageView<JobView>>('GET', `/api/jobs?${params}`).then(
      (a) => {
        setPage(a.body);
      },
      (e: unknown) => {
        setError(e);
      },
    );
  }, [query.toString()]);
  return (
    <section>
      <PageTitle>Jobs</PageTitle>
      <form
        class="row filter"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('jobs', Object.fromEntries(Object.entries(form).filter(([, v]) => v !== ''))));
        }}
      >
        <label>
          State{' '}
          <select
            value={form.state}
            onChange={(e) => {
              setForm({ ...form, state: e.currentTarget.value });
            }}
          >
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Kind{' '}
          <input
            value={form.kind}
            onInput={(e) => {
              setForm({ ...form, kind: e.currentTarget.value });
            }}
          />
        </label>
        <label>
          Name{' '}
          <input
            value={form.name}
            onInput={(e) => {
              setForm({ ...form, name: e.currentTarget.value });
            }}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBanner error={error} />
      <div class="table-wrap">
        <table class="jobs" aria-label="Jobs">
          <ColumnHeads
            columns={['Job', 'State', 'Node', 'Action', 'Actor', 'Started', 'Duration', 'Rounds']}
          />
          <tbody>
            {(page?.items ?? []).map((job) => (
              <tr key={job.id} data-job={job.id}>
                <th scope="row">
                  <a href={href('jobs', job.id)}>{job.id}</a>
                </th>
                <td>
                  <StateBadge state={job.state} />
                </td>
                <td>
                  <a href={href('node', job.kind, job.name)}>
                    {job.kind}/{job.name}
                  </a>
                </td>
                <td>{job.action}</td>
                <td>{actorText(job.actor)}</td>
                <td>
                  <Time at={job.startedAt ?? job.createdAt} />
                </td>
                <td>
                  {job.startedAt === undefined
                    ? ''
                    : duration(
                        Date.parse(job.endedAt ?? new Date().toISOString()) - Date.parse(job.startedAt),
                      )}
                </td>
                <td>{job.roundCount ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <NextPage next={page?.next} route="jobs" query={query} />
    </section>
  );
}

/** Rounds as the events tell them: `dispatched` opens a round with its tasks, `task` fills one in. */
function applyEvent(rounds: RoundLine[], event: JobEventView): RoundLine[] {
  const data = event.data as Record<string, JsonValue>;
  if (event.type === 'dispatched') {
    const round = data['round'] as number;
    const tasks = (data['tasks'] as { provider: string; updates: string[] }[]).map((t): TaskLine => ({
      provider: t.provider,
      updateIds: t.updates,
      running: true,
    }));
    const others = rounds.filter((r) => r.round !== round);
    const existing = rounds.find((r) => r.round === round);
    const merged =
      existing === undefined
        ? tasks
        : [...existing.tasks.filter((t) => !tasks.some((n) => n.provider === t.provider)), ...tasks];
    return [...others, { round, tasks: merged }].sort((a, b) => a.round - b.round);
  }
  if (event.type === 'task') {
    const provider = data['provider'] as string;
    const match = /\/r(\d+)\//.exec(typeof data['taskId'] === 'string' ? data['taskId'] : '');
    const round = match === null ? (rounds.at(-1)?.round ?? 1) : Number(match[1]);
    const done: TaskLine = {
      provider,
      ...(data['outcome'] === undefined ? {} : { outcome: data['outcome'] as TaskLine['outcome'] & object }),
      ...(data['error'] === undefined ? {} : { error: data['error'] as { code: string; message: string } }),
      ...(typeof data['durationMs'] === 'number' ? { durationMs: data['durationMs'] } : {}),
    };
    const existing = rounds.find((r) => r.round === round) ?? { round, tasks: [] };
    const tasks = existing.tasks.some((t) => t.provider === provider)
      ? existing.tasks.map((t) =>
          t.provider === provider ? { ...done, ...(t.updateIds ? { updateIds: t.updateIds } : {}) } : t,
        )
      : [...existing.tasks, done];
    return [...rounds.filter((r) => r.round !== round), { round, tasks }].sort((a, b) => a.round - b.round);
  }
  return rounds;
}

/** One job, live. */
export function JobPage({ id, canEdit }: { id: string; canEdit: boolean }) {
  const [job, setJob] = useState<JobView>();
  const [rounds, setRounds] = useState<RoundLine[]>([]);
  const [events, setEvents] = useState(0);
  const [statesSeen, setStatesSeen] = useState<string[]>([]);
  const [error, setError] = useState<unknown>();
  const refresh = useRef<() => void>(() => undefined);
  const path = `/api/jobs/${encodeURIComponent(id)}`;

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = (): void => {
      request<JobView>('GET', path, { signal: abort.signal }).then(
        (a) => {
          setJob(a.body);
          setStatesSeen((seen) => (seen.at(-1) === a.body.state ? seen : [...seen, a.body.state]));
        },
        (e: unknown) => {
          if (!abort.signal.aborted) setError(e);
        },
      );
    };
    // The job record (conditions, TTL, state) is re-read shortly after events, at most a few times a second.
    refresh.current = () => {
      if (timer === undefined)
        timer = setTimeout(() => {
          timer = undefined;
          load();
        }, 150);
    };
    load();
    followEvents(
      `${path}/events`,
      (event) => {
        setEvents((n) => n + 1);
        setRounds((old) => applyEvent(old, event));
        if (event.type === 'state' || event.type === 'ended') {
          const state = (event.data as { state?: string }).state;
          if (state !== undefined) setStatesSeen((seen) => (seen.at(-1) === state ? seen : [...seen, state]));
        }
        refresh.current();
      },
      abort.signal,
    )
      .then(() => {
        if (!abort.signal.aborted) load();
      })
      .catch((e: unknown) => {
        if (!abort.signal.aborted) setError(e);
      });
    return () => {
      abort.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [path]);

  const cancel = async (): Promise<void> => {
    try {
      setJob((await request<JobView>('POST', `${path}/cancel`)).body);
    } catch (e) {
      setError(e);
    }
  };

  const shown =
    job !== undefined && TERMINAL.includes(job.state) && job.rounds !== undefined
      ? roundsOf(job.rounds)
      : rounds;
  return (
    <section>
      <PageTitle>Job {id}</PageTitle>
      <ErrorBanner error={error} />
      {job === undefined ? null : (
        <>
          <dl class="facts" aria-live="polite">
            <dt>State</dt>
            <dd data-state={job.state} data-seen={statesSeen.join(' ')}>
              <StateBadge state={job.state} /> <span class="muted">({events} events received live)</span>
            </dd>
            <dt>Node</dt>
            <dd>
              {job.action}{' '}
              <a href={href('node', job.kind, job.name)}>
                {job.kind}/{job.name}
              </a>
            </dd>
            <dt>Actor</dt>
            <dd>{actorText(job.actor)}</dd>
            <dt>Started</dt>
            <dd>
              <Time at={job.startedAt ?? job.createdAt} />
              {job.endedAt === undefined
                ? ''
                : ` · took ${duration(Date.parse(job.endedAt) - Date.parse(job.startedAt ?? job.createdAt))}`}
            </dd>
            {job.expiresAt === undefined ? null : (
              <>
                <dt>TTL</dt>
                <dd>
                  runs until <Time at={job.expiresAt} /> unless done
                </dd>
              </>
            )}
          </dl>
          {job.conditions !== undefined && job.conditions.length > 0 ? (
            <section class="banner blocked" aria-labelledby="blocked-title">
              <h2 id="blocked-title">Waiting on</h2>
              <ul>
                {job.conditions.map((c) => (
                  <li key={c.updateId}>
                    <strong>{c.provider}</strong> holds <code>{c.path}</code> ({c.status})
                    {c.reason === undefined ? '' : `: ${c.reason}`}
                  </li>
                ))}
              </ul>
            </section>
          ) : null}
          {job.failure === undefined ? null : (
            <div class="banner error" role="alert">
              <strong>Failed ({job.failure.code}):</strong> {job.failure.message}
              {job.failure.providers === undefined ? '' : ` (providers: ${job.failure.providers.join(', ')})`}
            </div>
          )}
          {canEdit && !TERMINAL.includes(job.state) ? (
            <button
              type="button"
              class="danger"
              onClick={() => void cancel()}
              disabled={job.cancelRequested !== undefined}
            >
              {job.cancelRequested === undefined ? 'Cancel the job' : 'Cancel requested'}
            </button>
          ) : null}
          <h2>Updates</h2>
          <ul class="updates">
            {job.updates.map((u, i) => (
              <li key={i}>
                <code>
                  {u.op} {u.path}
                  {u.value === undefined ? '' : ` = ${JSON.stringify(u.value)}`}
                </code>
              </li>
            ))}
          </ul>
          <h2>Rounds</h2>
          <Rounds rounds={shown} label="Rounds of the job" />
        </>
      )}
    </section>
  );
}
