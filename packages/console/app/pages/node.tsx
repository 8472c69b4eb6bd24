/**
 * One node: every value with the provider that owns it, drift (what a provider saw instead, and when), the
 * revision, references as links; the edit form generated from the kind's schema, checked in the page before
 * anything is sent; explain (the plan round by round) before apply; apply with `If-Match`, and a stale revision
 * shows what changed meanwhile and offers to reload.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Attrs, ExplainView, JobView, NodeAuthorityView } from '@consortium/core';
import { ApiError, request } from '../api.js';
import { ColumnHeads, ErrorBanner, PageTitle, Rounds, Time, roundsOf } from '../components.js';
import { ChangeForm, useRefOptions } from '../form.js';
import { useDocument } from '../kinds.js';
import { href, navigate } from '../router.js';
import type { FieldError, FormState, KindDocument } from '../schema.js';
import {
  attrsOf,
  display,
  fieldAtPath,
  formStateOf,
  mergePatch,
  validateAttrs,
  valueAtPath,
} from '../schema.js';

/** The plan of an explained change, drawn round by round. */
export function PlanView({ explain }: { explain: ExplainView }) {
  const { plan } = explain;
  return (
    <section class="plan" aria-labelledby="plan-title">
      <h2 id="plan-title">
        Plan: <span class={`badge state-${plan.outcome}`}>{plan.outcome}</span> in {plan.rounds.length}{' '}
        round(s)
      </h2>
      {plan.reason === undefined ? null : <p>{plan.reason}</p>}
      <Rounds rounds={roundsOf(plan.rounds)} label="Planned rounds" />
      {plan.later.length === 0 ? null : (
        <p>
          Known once applied:{' '}
          {plan.later.map((l) => (
            <span key={l.path}>
              <code>{l.path}</code> from {l.provider}{' '}
            </span>
          ))}
        </p>
      )}
    </section>
  );
}

/** Paths whose values differ between two versions of a node (top-level attributes). */
function changedPaths(before: Attrs, after: Attrs): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
}

function EditForm({
  kind,
  doc,
  node,
  onReload,
}: {
  kind: string;
  doc: KindDocument;
  node: NodeAuthorityView;
  onReload: () => void;
}) {
  const [state, setState] = useState<FormState>(() => formStateOf(doc, node.attrs));
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [explain, setExplain] = useState<ExplainView>();
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState<{ current: NodeAuthorityView; changed: string[] }>();
  const [busy, setBusy] = useState(false);
  const refs = useRefOptions(doc);
  const path = `/api/inventory/${encodeURIComponent(kind)}/${encodeURIComponent(node.name)}`;

  /** The patch, or undefined after showing the schema's messages (nothing is sent then). */
  const patchOrErrors = (): Record<string, unknown> | undefined => {
    const attrs = attrsOf(doc, state);
    const found = validateAttrs(doc, attrs);
    setErrors(found);
    if (found.length > 0) {
      document.getElementById(`attr-${found[0]?.field.split('/')[0] ?? ''}`)?.focus();
      return undefined;
    }
    return mergePatch(doc, node.attrs, attrs);
  };

  const send = async (mode: 'explain' | 'apply'): Promise<void> => {
    const patch = patchOrErrors();
    if (patch === undefined) return;
    setError(undefined);
    setBusy(true);
    try {
      const answer = await request<ExplainView | JobView>(
        'PATCH',
        mode === 'explain' ? `${path}?explain=true` : path,
        {
          body: patch,
          type: 'application/merge-patch+json',
          headers: { 'if-match': `"${node.revision}"` },
        },
      );
      if (mode === 'explain') setExplain(answer.body as ExplainView);
      else if ('id' in answer.body) navigate(href('jobs', answer.body.id));
      else setError(new Error('nothing to change: the form matches the node'));
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        const current = (await request<NodeAuthorityView>('GET', `${path}?show=authority`)).body;
        setConflict({ current, changed: changedPaths(node.attrs, current.attrs) });
      } else setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="edit" aria-labelledby="edit-title">
      <h2 id="edit-title">
        Edit {node.name} (revision {node.revision})
      </h2>
      {conflict === undefined ? null : (
        <div class="banner conflict" role="alert">
          <p>
            <strong>Changed meanwhile:</strong> {kind}/{node.name} is now at revision{' '}
            {conflict.current.revision}, not {node.revision}; nothing was applied.
          </p>
          {conflict.changed.length === 0 ? null : (
            <ul>
              {conflict.changed.map((p) => (
                <li key={p}>
                  <code>{p}</code>: {display(node.attrs[p]) || '(not set)'} →{' '}
                  {display(conflict.current.attrs[p]) || '(not set)'}
                </li>
              ))}
            </ul>
          )}
          <button type="button" onClick={onReload}>
            Reload the node
          </button>
        </div>
      )}
      <ChangeForm
        fields={{ doc, state, onChange: setState, errors, refs }}
        error={error}
        busy={busy}
        submitLabel="Apply"
        onSend={(mode) => void send(mode === 'submit' ? 'apply' : 'explain')}
      />
      {explain === undefined ? null : <PlanView explain={explain} />}
    </section>
  );
}

/** The page of `kind/name`. */
export function NodePage({ kind, name, canEdit }: { kind: string; name: string; canEdit: boolean }) {
  const { doc, error: schemaError } = useDocument(kind);
  const [node, setNode] = useState<NodeAuthorityView>();
  const [error, setError] = useState<unknown>();
  const [editing, setEditing] = useState(false);
  const [generation, setGeneration] = useState(0);
  const path = `/api/inventory/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;

  useEffect(() => {
    setError(undefined);
    request<NodeAuthorityView>('GET', `${path}?show=authority`).then(
      (a) => {
        setNode(a.body);
      },
      (e: unknown) => {
        setError(e);
      },
    );
  }, [path, generation]);

  const remove = async (): Promise<void> => {
    if (node === undefined || !confirm(`Delete ${kind}/${name}?`)) return;
    try {
      const answer = await request<JobView>('DELETE', path, {
        headers: { 'if-match': `"${node.revision}"` },
      });
      navigate(href('jobs', answer.body.id));
    } catch (e) {
      setError(e);
    }
  };

  if (schemaError !== undefined) return <ErrorBanner error={schemaError} />;
  return (
    <section>
      <div class="title-row">
        <PageTitle>
          {kind}/{name}
        </PageTitle>
        {node === undefined ? null : (
          <span class="muted" data-revision={node.revision}>
            revision {node.revision} · updated <Time at={node.updatedAt} />
          </span>
        )}
      </div>
      <ErrorBanner error={error} />
      <nav class="row" aria-label="About this node">
        <a href={href('jobs', { kind, name })}>Jobs of this node</a>
        <a href={href('audit', { kind, name })}>Audit log of this node</a>
        {canEdit && node !== undefined ? (
          <>
            <button
              type="button"
              onClick={() => {
                setEditing(!editing);
              }}
              aria-expanded={editing}
            >
              {editing ? 'Close the editor' : 'Edit'}
            </button>
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete
            </button>
          </>
        ) : null}
      </nav>
      {node === undefined || doc === undefined ? null : (
        <>
          {node.drift.length === 0 ? null : (
            <p class="banner drift" role="status">
              {node.drift.length} value(s) drifted: a provider saw something other than the value it owns.
            </p>
          )}
          <div class="table-wrap">
            <table class="attributes" aria-label="Attributes and their owners">
              <ColumnHeads columns={['Attribute', 'Value', 'Owner', 'Drift']} />
              <tbody>
                {Object.entries(node.authority).map(([p, owner]) => {
                  const value = valueAtPath(doc, node.attrs, p);
                  const field = fieldAtPath(doc, p);
                  const ref = field?.['x-ref'];
                  // A map list shows its items' keys; each item's fields have rows of their own.
                  const keys = field?.['x-list-map-keys']?.[0];
                  const shown =
                    keys !== undefined && Array.isArray(value)
                      ? (value as Attrs[]).map((item) => display(item[keys])).join(', ')
                      : display(value);
                  const drift = node.drift.find((d) => d.path === p);
                  return (
                    <tr key={p} data-path={p} class={drift === undefined ? '' : 'drifted'}>
                      <th scope="row">
                        <code>{p}</code>
                      </th>
                      <td>
                        {ref !== undefined && typeof value === 'string' ? (
                          <a href={href('node', ref, value)}>{value}</a>
                        ) : (
                          shown
                        )}
                      </td>
                      <td class="owner-cell">{owner}</td>
                      <td>
                        {drift === undefined ? (
                          ''
                        ) : (
                          <span>
                            {drift.provider} saw <code>{display(drift.observed) || '(nothing)'}</code> at{' '}
                            <Time at={drift.at} />
                          </span>
                        )}
                      </td>
                    </tr>
                  );
                })}
                {node.drift
                  .filter((d) => !(d.path in node.authority))
                  .map((d) => (
                    <tr key={d.path} data-path={d.path} class="drifted">
                      <th scope="row">
                        <code>{d.path}</code>
                      </th>
                      <td>{display(d.expected)}</td>
                      <td class="owner-cell">{d.provider}</td>
                      <td>
                        {d.provider} saw <code>{display(d.observed)}</code> at <Time at={d.at} />
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
          {canEdit && editing ? (
            <EditForm
              key={`${node.revision}-${generation}`}
              kind={kind}
              doc={doc}
              node={node}
              onReload={() => {
                setGeneration((g) => g + 1);
              }}
            />
          ) : null}
        </>
      )}
    </section>
  );
}
