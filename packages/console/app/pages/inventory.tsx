/**
 * The inventory of one kind: the filter box (NetBox-style `key=value` filters, or the search language), a column
 * chooser, cursor paging, sorting of the page shown, and bulk change or delete of the selected nodes (one job per
 * node, each followed to its end).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { JobView, JsonValue, NodeView, PageView } from '@consortium/core';
import { ApiError, messageOf, request } from '../api.js';
import { ColumnHeads, ErrorBanner, PageTitle, StateBadge } from '../components.js';
import { useDocument } from '../kinds.js';
import { href, navigate } from '../router.js';
import type { Route } from '../router.js';
import type { KindDocument } from '../schema.js';
import { attrsOf, display, formFields, validateAttrs } from '../schema.js';

const TERMINAL = ['succeeded', 'failed', 'expired', 'cancelled'];
/** Orders names and values as people read them: web2 before web10. */
const COLLATOR = new Intl.Collator(undefined, { numeric: true });

/** True when the box holds NetBox-style filters (`datacenter=pek1 name__isw=web`) rather than a search query. */
export function isListFilter(text: string): boolean {
  const words = text.trim().split(/\s+/);
  return words.every((w) => /^[a-z_][a-z0-9_.]*(__[a-z]+)?=\S*$/i.test(w));
}

/** The columns offered: `ip` (every interface's address) where the kind has interfaces, then each attribute. */
function columnsOf(doc: KindDocument): string[] {
  const names = formFields(doc).map(([name]) => name);
  return names.includes('interfaces') ? ['ip', ...names] : names;
}

function defaultColumns(doc: KindDocument): string[] {
  const preferred = [
    'ip',
    'power',
    'hypervisor',
    'hwspec',
    'subnet',
    'cidr',
    'gateway',
    'vid',
    'address',
    'datacenter',
  ];
  const offered = columnsOf(doc);
  const chosen = preferred.filter((c) => offered.includes(c));
  return chosen.length > 0 ? chosen.slice(0, 5) : offered.slice(0, 4);
}

function cell(node: NodeView, column: string): JsonValue | undefined {
  if (column === 'ip') {
    const interfaces = node.attrs['interfaces'];
    if (!Array.isArray(interfaces)) return undefined;
    return (interfaces as JsonValue[])
      .map((i) =>
        typeof i === 'object' && i !== null && !Array.isArray(i)
          ? (i as Record<string, JsonValue>)['ip']
          : undefined,
      )
      .filter((ip): ip is JsonValue => ip !== undefined && ip !== null);
  }
  return node.attrs[column];
}

interface Progress {
  readonly name: string;
  readonly state: string;
  readonly jobId?: string;
  readonly error?: string;
}

/** Sends one change per node (at most `parallel` at a time) and reports each job's state until it ends. */
async function runPerNode(
  names: readonly string[],
  send: (name: string) => Promise<JobView>,
  report: (progress: Progress) => void,
  parallel = 8,
): Promise<void> {
  const queue = [...names];
  const worker = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      report({ name, state: 'sending' });
      try {
        let job = await send(name);
        report({ name, state: job.state, jobId: job.id });
        while (!TERMINAL.includes(job.state)) {
          job = (await request<JobView>('GET', `/api/jobs/${job.id}?wait=30s`)).body;
          report({
            name,
            state: job.state,
            jobId: job.id,
            ...(job.failure ? { error: job.failure.message } : {}),
          });
        }
      } catch (error) {
        report({ name, state: 'refused', error: messageOf(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, names.length) }, worker));
}

function BulkPanel({
  kind,
  doc,
  selected,
  onDone,
}: {
  kind: string;
  doc: KindDocument;
  selected: readonly string[];
  onDone: () => void;
}) {
  const fields = formFields(doc).filter(([, f]) => f.type !== 'object' && f['x-list-type'] !== 'map');
  const [attribute, setAttribute] = useState(fields[0]?.[0] ?? '');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string>();
  const [progress, setProgress] = useState<Record<string, Progress>>({});
  const [busy, setBusy] = useState(false);
  const field = fields.find(([name]) => name === attribute)?.[1];

  const run = async (change: 'patch' | 'delete'): Promise<void> => {
    let patch: Record<string, JsonValue> = {};
    if (change === 'patch') {
      const attrs = attrsOf(doc, { [attribute]: value });
      const errors = validateAttrs(doc, attrs);
      if (errors.length > 0) {
        setError(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
        return;
      }
      patch = { [attribute]: attrs[attribute] ?? null };
    } else if (!confirm(`Delete ${selected.length} ${kind} node(s)? One job per node.`)) return;
    setError(undefined);
    setBusy(true);
    setProgress(Object.fromEntries(selected.map((name) => [name, { name, state: 'waiting' }])));
    await runPerNode(
      selected,
      async (name) => {
        const path = `/api/inventory/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;
        const answer =
          change === 'patch'
            ? await request<JobView>('PATCH', path, { body: patch, type: 'application/merge-patch+json' })
            : await request<JobView>('DELETE', path);
        return answer.body;
      },
      (p) => {
        setProgress((old) => ({ ...old, [p.name]: p }));
      },
    );
    setBusy(false);
    onDone();
  };

  const choices = field?.enum?.map(String);
  return (
    <section class="bulk" aria-labelledby="bulk-title">
      <h2 id="bulk-title">{selected.length} selected: change or delete (one job per node)</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void run('patch');
        }}
      >
        <label>
          Attribute{' '}
          <select
            value={attribute}
            onChange={(e) => {
              setAttribute(e.currentTarget.value);
            }}
          >
            {fields.map(([name]) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          New value{' '}
          {choices === undefined ? (
            <input
              value={value}
              aria-invalid={error === undefined ? undefined : 'true'}
              aria-describedby="bulk-error"
              onInput={(e) => {
                setValue(e.currentTarget.value);
              }}
            />
          ) : (
            <select
              value={value}
              onChange={(e) => {
                setValue(e.currentTarget.value);
              }}
            >
              <option value="">(unset)</option>
              {choices.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          )}
        </label>
        <button type="submit" disabled={busy}>
          Change {selected.length}
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => void run('delete')}>
          Delete {selected.length}
        </button>
      </form>
      {error === undefined ? null : (
        <p id="bulk-error" class="field-error" role="alert">
          {error}
        </p>
      )}
      {Object.keys(progress).length === 0 ? null : (
        <table class="progress" aria-label="Progress per node">
          <ColumnHeads columns={['Node', 'Job', 'State']} />
          <tbody aria-live="polite">
            {Object.values(progress).map((p) => (
              <tr key={p.name} data-node={p.name} data-state={p.state}>
                <td>{p.name}</td>
                <td>{p.jobId === undefined ? '' : <a href={href('jobs', p.jobId)}>{p.jobId}</a>}</td>
                <td>
                  <StateBadge state={p.state} /> {p.error ?? ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A page of nodes as shown in the inventory. */
interface NodePage {
  readonly items: readonly NodeView[];
  readonly next?: string;
  readonly truncated?: boolean;
}

/**
 * Loads the page the filter box asks for: NetBox-style filters page through the inventory, anything else is a
 * search; a refused query is the operator's typing (`queryError`), anything else a page error.
 */
function useNodePage(
  kind: string,
  q: string,
  cursor: string | undefined,
  limit: string,
  reload: number,
): { page: NodePage | undefined; queryError: string | undefined; error: unknown } {
  const [page, setPage] = useState<NodePage>();
  const [queryError, setQueryError] = useState<string>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const abort = new AbortController();
    setQueryError(undefined);
    setError(undefined);
    const load = async (): Promise<void> => {
      try {
        if (q.trim() === '' || isListFilter(q)) {
          const params = new URLSearchParams({ limit });
          for (const word of q
            .trim()
            .split(/\s+/)
            .filter((w) => w !== '')) {
            const at = word.indexOf('=');
            params.append(word.slice(0, at), word.slice(at + 1));
          }
          if (cursor !== undefined) params.set('cursor', cursor);
          const answer = await request<PageView<NodeView>>(
            'GET',
            `/api/inventory/${encodeURIComponent(kind)}?${params}`,
            {
              signal: abort.signal,
            },
          );
          setPage(answer.body);
        } else {
          const params = new URLSearchParams({ q: `kind=${kind} and (${q})`, limit });
          const answer = await request<{ items: NodeView[]; truncated?: boolean }>(
            'GET',
            `/api/search?${params}`,
            {
              signal: abort.signal,
            },
          );
          setPage(answer.body);
        }
      } catch (e) {
        if (abort.signal.aborted) return;
        // A refused query is the operator's typing: shown under the box, not as a page error.
        if (e instanceof ApiError && e.status === 400 && q !== '') setQueryError(e.problem.detail);
        else setError(e);
        setPage(undefined);
      }
    };
    void load();
    return () => {
      abort.abort();
    };
  }, [kind, q, cursor, limit, reload]);
  return { page, queryError, error };
}

/** The inventory page of `kind`. */
export function InventoryPage({ kind, route, canEdit }: { kind: string; route: Route; canEdit: boolean }) {
  const { doc, error: schemaError } = useDocument(kind);
  const q = route.query.get('q') ?? '';
  const cursor = route.query.get('cursor') ?? undefined;
  const limit = route.query.get('limit') ?? '50';
  const sort = route.query.get('sort') ?? 'name';
  const dir = route.query.get('dir') === 'desc' ? 'desc' : 'asc';
  const [text, setText] = useState(q);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [reload, setReload] = useState(0);
  const columns = useMemo(() => {
    const chosen = route.query.get('cols');
    if (chosen !== null) return chosen.split(',').filter((c) => c !== '');
    return doc === undefined ? [] : defaultColumns(doc);
  }, [route.query, doc]);

  const go = (changes: Record<string, string | undefined>): void => {
    const query = new URLSearchParams(route.query);
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined || value === '') query.delete(key);
      else query.set(key, value);
    }
    navigate(href('inventory', kind, query));
  };

  useEffect(() => {
    setText(q);
  }, [q]);
  const { page, queryError, error } = useNodePage(kind, q, cursor, limit, reload);

  const rows = useMemo(() => {
    const items = [...(page?.items ?? [])];
    const key = (n: NodeView): string => (sort === 'name' ? n.name : display(cell(n, sort)));
    // One collator for the whole sort: localeCompare with options builds one per call (seconds for 1,000 rows).
    const keys = new Map(items.map((n) => [n, key(n)]));
    const sign = dir === 'asc' ? 1 : -1;
    items.sort((a, b) => COLLATOR.compare(keys.get(a) ?? '', keys.get(b) ?? '') * sign);
    return items;
  }, [page, sort, dir]);

  useEffect(() => {
    // Marks when a page of rows is on screen (effects run after the browser painted them): the benchmark reads it.
    if (page !== undefined) performance.mark('inventory-drawn', { detail: { rows: rows.length } });
  }, [rows]);

  if (schemaError !== undefined) return <ErrorBanner error={schemaError} />;
  const sortButton = (column: string) => (
    <th
      scope="col"
      key={column}
      aria-sort={sort === column ? (dir === 'asc' ? 'ascending' : 'descending') : 'none'}
    >
      <button
        type="button"
        class="sort"
        onClick={() => {
          go({ sort: column, dir: sort === column && dir === 'asc' ? 'desc' : 'asc' });
        }}
      >
        {column}
        {sort === column ? (dir === 'asc' ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
  const allSelected = rows.length > 0 && rows.every((n) => selected.has(n.name));
  return (
    <section>
      <div class="title-row">
        <PageTitle>Inventory: {kind}</PageTitle>
        {canEdit ? (
          <a class="button" href={href('create', kind)}>
            New {kind}
          </a>
        ) : null}
      </div>
      <form
        class="filter"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go({ q: text.trim(), cursor: undefined });
        }}
      >
        <label for="filter">Filter or search</label>
        <div class="row">
          <input
            id="filter"
            type="search"
            value={text}
            placeholder="datacenter=pek1 hwspec__n=large   or   power=on and name ~ web*"
            aria-invalid={queryError === undefined ? undefined : 'true'}
            aria-describedby="filter-help filter-error"
            onInput={(e) => {
              setText(e.currentTarget.value);
            }}
          />
          <button type="submit">Apply</button>
        </div>
        <small id="filter-help" class="help">
          NetBox-style filters (<code>key=value</code>, <code>key__n=</code>, <code>__isw</code>,{' '}
          <code>__gte</code>…) page through every node; anything else is the search language (<code>and</code>
          , <code>or</code>, <code>in</code>, <code>~</code>).
        </small>
        <div id="filter-error" class="field-error" role="alert">
          {queryError ?? ''}
        </div>
      </form>
      {doc === undefined ? null : (
        <ColumnPicker
          doc={doc}
          columns={columns}
          onChange={(next) => {
            go({ cols: next.join(',') });
          }}
        />
      )}
      <ErrorBanner error={error} />
      {canEdit && selected.size > 0 && doc !== undefined ? (
        <BulkPanel
          kind={kind}
          doc={doc}
          selected={[...selected]}
          onDone={() => {
            setReload((n) => n + 1);
          }}
        />
      ) : null}
      <div class="table-wrap">
        <table class="inventory" aria-label={`${kind} nodes`} data-count={rows.length}>
          <thead>
            <tr>
              {canEdit ? (
                <th scope="col" class="select">
                  <input
                    type="checkbox"
                    aria-label="Select every node on this page"
                    checked={allSelected}
                    onChange={() => {
                      setSelected(allSelected ? new Set() : new Set(rows.map((n) => n.name)));
                    }}
                  />
                </th>
              ) : null}
              {sortButton('name')}
              {columns.map(sortButton)}
            </tr>
          </thead>
          <tbody>
            {rows.map((node) => (
              <tr key={node.name} data-name={node.name}>
                {canEdit ? (
                  <td class="select">
                    <input
                      type="checkbox"
                      aria-label={`Select ${node.name}`}
                      checked={selected.has(node.name)}
                      onChange={(e) => {
                        const next = new Set(selected);
                        if (e.currentTarget.checked) next.add(node.name);
                        else next.delete(node.name);
                        setSelected(next);
                      }}
                    />
                  </td>
                ) : null}
                <th scope="row">
                  <a href={href('node', kind, node.name)}>{node.name}</a>
                </th>
                {columns.map((column) => (
                  <td key={column}>{display(cell(node, column))}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page === undefined ? null : (
        <Pager
          shown={rows.length}
          truncated={page.truncated === true}
          back={cursor !== undefined}
          {...(page.next === undefined
            ? {}
            : {
                onNext: () => {
                  go({ cursor: page.next });
                },
              })}
        />
      )}
    </section>
  );
}

/** The column chooser: every attribute the kind's schema has, the shown ones checked, in the schema's order. */
function ColumnPicker({
  doc,
  columns,
  onChange,
}: {
  doc: KindDocument;
  columns: readonly string[];
  onChange: (columns: string[]) => void;
}) {
  return (
    <details class="columns">
      <summary>Columns</summary>
      <fieldset>
        <legend>Columns shown</legend>
        {columnsOf(doc).map((column) => (
          <label key={column} class="check">
            <input
              type="checkbox"
              checked={columns.includes(column)}
              onChange={(e) => {
                onChange(
                  e.currentTarget.checked
                    ? columnsOf(doc).filter((c) => c === column || columns.includes(c))
                    : columns.filter((c) => c !== column),
                );
              }}
            />{' '}
            {column}
          </label>
        ))}
      </fieldset>
    </details>
  );
}

/** Under the inventory: how many rows are shown, back to the previous page, on to the next. */
function Pager({
  shown,
  truncated,
  back,
  onNext,
}: {
  shown: number;
  truncated: boolean;
  back: boolean;
  onNext?: () => void;
}) {
  return (
    <nav class="pager" aria-label="Pages">
      <span class="muted">
        {shown} shown{truncated ? ' (more match: narrow the search)' : ''}; sorting orders this page
      </span>
      {back ? (
        <button
          type="button"
          class="secondary"
          onClick={() => {
            history.back();
          }}
        >
          Previous page
        </button>
      ) : null}
      {onNext === undefined ? null : (
        <button type="button" onClick={onNext}>
          Next page
        </button>
      )}
    </nav>
  );
}
