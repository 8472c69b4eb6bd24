/** Creating a node of any kind from the form generated from its schema; explain first, or create at once. */
import { useState } from 'preact/hooks';
import type { ExplainView, JobView } from '@consortium/core';
import { request } from '../api.js';
import { ErrorBanner, PageTitle } from '../components.js';
import { ChangeForm, useRefOptions } from '../form.js';
import { useDocument } from '../kinds.js';
import { href, navigate } from '../router.js';
import type { FieldError, FormState } from '../schema.js';
import { attrsOf, validateAttrs } from '../schema.js';
import { PlanView } from './node.js';

/** The page that creates a `kind` node. */
export function CreatePage({ kind }: { kind: string }) {
  const { doc, error: schemaError } = useDocument(kind);
  const [name, setName] = useState('');
  const [state, setState] = useState<FormState>({});
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [error, setError] = useState<unknown>();
  const [explain, setExplain] = useState<ExplainView>();
  const [busy, setBusy] = useState(false);
  const refs = useRefOptions(doc);

  const send = async (mode: 'explain' | 'create'): Promise<void> => {
    if (doc === undefined) return;
    const attrs = attrsOf(doc, state);
    const found = validateAttrs(doc, attrs);
    if (name.trim() === '') found.unshift({ field: 'name', message: 'a node needs a name' });
    setErrors(found);
    if (found.length > 0) {
      document
        .getElementById(
          found[0]?.field === 'name' ? 'node-name' : `attr-${found[0]?.field.split('/')[0] ?? ''}`,
        )
        ?.focus();
      return;
    }
    setError(undefined);
    setBusy(true);
    try {
      const path = `/api/inventory/${encodeURIComponent(kind)}${mode === 'explain' ? '?explain=true' : ''}`;
      const answer = await request<ExplainView | JobView>('POST', path, {
        body: { name: name.trim(), attrs },
      });
      if (mode === 'explain') setExplain(answer.body as ExplainView);
      else navigate(href('jobs', (answer.body as JobView).id));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (schemaError !== undefined) return <ErrorBanner error={schemaError} />;
  const nameError = errors.find((e) => e.field === 'name')?.message;
  return (
    <section>
      <PageTitle>New {kind}</PageTitle>
      {doc === undefined ? (
        <p class="muted">Loading the schema…</p>
      ) : (
        <ChangeForm
          fields={{ doc, state, onChange: setState, errors, refs }}
          error={error}
          busy={busy}
          submitLabel="Create"
          onSend={(mode) => void send(mode === 'submit' ? 'create' : 'explain')}
        >
          <div class="field">
            <label for="node-name">Name</label>
            <input
              id="node-name"
              value={name}
              required
              aria-invalid={nameError === undefined ? undefined : 'true'}
              aria-describedby="node-name-error"
              onInput={(e) => {
                setName(e.currentTarget.value);
              }}
            />
            <small id="node-name-error" class="field-error">
              {nameError ?? ''}
            </small>
          </div>
        </ChangeForm>
      )}
      {explain === undefined ? null : <PlanView explain={explain} />}
    </section>
  );
}
