/** Admin: API tokens (create with a role and an expiry, list, revoke) and the audit log, overall or per node. */
import { useEffect, useState } from 'preact/hooks';
import type { ActorView, Attrs, CreatedTokenView, Role, TokenView } from '@consortium/core';
import { ApiError, request } from '../api.js';
import { ColumnHeads, ErrorBanner, NextPage, PageTitle, Time, actorText } from '../components.js';
import { href, navigate } from '../router.js';
import type { Route } from '../router.js';
import { display } from '../schema.js';

const EXPIRIES: readonly [string, number | undefined][] = [
  ['1 hour', 3600],
  ['1 day', 86_400],
  ['30 days', 30 * 86_400],
  ['1 year', 365 * 86_400],
  ['never', undefined],
];

/** The tokens page. */
export function TokensPage() {
  const [tokens, setTokens] = useState<readonly TokenView[]>([]);
  const [error, setError] = useState<unknown>();
  const [created, setCreated] = useState<CreatedTokenView>();
  const [role, setRole] = useState<Role>('reader');
  const [description, setDescription] = useState('');
  const [expiry, setExpiry] = useState('30 days');
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    request<{ items: TokenView[] }>('GET', '/api/tokens').then(
      (a) => {
        setTokens(a.body.items);
      },
      (e: unknown) => {
        setError(e);
      },
    );
  }, [generation]);

  const create = async (): Promise<void> => {
    const ttl = EXPIRIES.find(([label]) => label === expiry)?.[1];
    try {
      const answer = await request<CreatedTokenView>('POST', '/api/tokens', {
        body: {
          role,
          ...(description === '' ? {} : { description }),
          ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
        },
      });
      setCreated(answer.body);
      setDescription('');
      setGeneration((g) => g + 1);
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (token: TokenView): Promise<void> => {
    if (!confirm(`Revoke token ${token.id}${token.description === null ? '' : ` (${token.description})`}?`))
      return;
    try {
      await request('DELETE', `/api/tokens/${encodeURIComponent(token.id)}`);
      setGeneration((g) => g + 1);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <PageTitle>API tokens</PageTitle>
      <ErrorBanner error={error} />
      <form
        class="row"
        aria-label="New token"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label>
          Role{' '}
          <select
            value={role}
            onChange={(e) => {
              setRole(e.currentTarget.value as Role);
            }}
          >
            <option>reader</option>
            <option>operator</option>
            <option>admin</option>
          </select>
        </label>
        <label>
          Description{' '}
          <input
            value={description}
            onInput={(e) => {
              setDescription(e.currentTarget.value);
            }}
          />
        </label>
        <label>
          Expires after{' '}
          <select
            value={expiry}
            onChange={(e) => {
              setExpiry(e.currentTarget.value);
            }}
          >
            {EXPIRIES.map(([label]) => (
              <option key={label}>{label}</option>
            ))}
          </select>
        </label>
        <button type="submit">Create token</button>
      </form>
      {created === undefined ? null : (
        <div class="banner success" role="status">
          New {created.role} token {created.id} (shown this once): <code id="new-token">{created.token}</code>
        </div>
      )}
      <div class="table-wrap">
        <table aria-label="Tokens">
          <ColumnHeads columns={['Id', 'Role', 'Description', 'Created', 'Expires', '']} />
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.id}>
                <th scope="row">{t.id}</th>
                <td>{t.role}</td>
                <td>{t.description ?? ''}</td>
                <td>
                  <Time at={t.createdAt} />
                </td>
                <td>{t.expiresAt === null ? 'never' : <Time at={t.expiresAt} />}</td>
                <td>
                  <button type="button" class="danger" onClick={() => void revoke(t)}>
                    Revoke {t.id}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** One audit entry as `GET /api/audit` answers it (the fields the page shows). */
interface AuditRow {
  readonly at: string | number;
  readonly actor: ActorView | string;
  readonly action: string;
  readonly kind: string;
  readonly name: string;
  readonly jobId?: string;
  readonly job?: string;
  readonly before?: Attrs | null;
  readonly after?: Attrs | null;
}

function changes(row: AuditRow): string {
  const before = row.before ?? {};
  const after = row.after ?? {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return keys.map((k) => `${k}: ${display(before[k]) || '∅'} → ${display(after[k]) || '∅'}`).join('; ');
}

/** The audit log, filtered by kind, name, actor or job. */
export function AuditPage({ route }: { route: Route }) {
  const query = route.query;
  const [page, setPage] = useState<{ items: AuditRow[]; next?: string }>();
  const [error, setError] = useState<unknown>();
  const [form, setForm] = useState({
    kind: query.get('kind') ?? '',
    name: query.get('name') ?? '',
    actor: query.get('actor') ?? '',
  });
  useEffect(() => {
    const params = new URLSearchParams();
    for (const key of ['kind', 'name', 'actor', 'job', 'cursor']) {
      const value = query.get(key);
      if (value !== null && value !== '') params.set(key, value);
    }
    params.set('limit', '100');
    setError(undefined);
    request<{ items: AuditRow[]; next?: string }>('GET', `/api/audit?${params}`).then(
      (a) => {
        setPage(a.body);
      },
      (e: unknown) => {
        setError(
          e instanceof ApiError && e.status === 404 && e.problem.detail.startsWith('no route')
            ? new Error('this server has no audit API (GET /api/audit) yet')
            : e,
        );
      },
    );
  }, [query.toString()]);
  return (
    <section>
      <PageTitle>Audit log</PageTitle>
      <form
        class="row filter"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('audit', Object.fromEntries(Object.entries(form).filter(([, v]) => v !== ''))));
        }}
      >
        {(['kind', 'name', 'actor'] as const).map((key) => (
          <label key={key}>
            {key}{' '}
            <input
              value={form[key]}
              onInput={(e) => {
                setForm({ ...form, [key]: e.currentTarget.value });
              }}
            />
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      <ErrorBanner error={error} />
      <div class="table-wrap">
        <table aria-label="Audit entries">
          <ColumnHeads columns={['When', 'Actor', 'Action', 'Node', 'Job', 'Changes']} />
          <tbody>
            {(page?.items ?? []).map((row, i) => {
              const job = row.jobId ?? row.job;
              return (
                <tr key={i}>
                  <td>
                    <Time at={row.at} />
                  </td>
                  <td>{actorText(row.actor)}</td>
                  <td>{row.action}</td>
                  <td>
                    <a href={href('node', row.kind, row.name)}>
                      {row.kind}/{row.name}
                    </a>
                  </td>
                  <td>{job === undefined ? '' : <a href={href('jobs', job)}>{job}</a>}</td>
                  <td>{changes(row)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <NextPage next={page?.next} route="audit" query={query} />
    </section>
  );
}
