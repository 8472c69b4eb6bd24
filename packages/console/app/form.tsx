/**
 * The form generated from a kind's compiled schema: one control per attribute (a select for an enum or a reference,
 * a number box for integers, comma-separated text for a set, rows for a map list, nested fields for an object),
 * each labelled with the provider that owns it (`x-authority`) and showing the schema's message when a value fails.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { NodeView, PageView } from '@consortium/core';
import { request } from './api.js';
import { ErrorBanner } from './components.js';
import type { FieldError, FieldSchema, FormState, FormValue, KindDocument } from './schema.js';
import { formFields } from './schema.js';

/** Names of the nodes each referenced kind has (for reference pickers: a host's subnet). */
export function useRefOptions(doc: KindDocument | undefined): Record<string, string[]> {
  const [options, setOptions] = useState<Record<string, string[]>>({});
  useEffect(() => {
    if (doc === undefined) return;
    const kinds = new Set<string>();
    const collect = (field: FieldSchema): void => {
      if (field['x-ref'] !== undefined) kinds.add(field['x-ref']);
      if (field.items !== undefined) collect(field.items);
      for (const sub of Object.values(field.properties ?? {})) collect(sub);
    };
    collect(doc);
    for (const kind of kinds) {
      void request<PageView<NodeView>>(
        'GET',
        `/api/inventory/${encodeURIComponent(kind)}?limit=1000&fields=present`,
      )
        .then((answer) => {
          setOptions((old) => ({ ...old, [kind]: answer.body.items.map((n) => n.name) }));
        })
        .catch(() => undefined);
    }
  }, [doc]);
  return options;
}

interface ControlProps {
  readonly id: string;
  readonly path: string;
  readonly field: FieldSchema;
  readonly value: FormValue | undefined;
  readonly onChange: (value: FormValue) => void;
  readonly errors: readonly FieldError[];
  readonly refs: Record<string, string[]>;
}

function errorAt(errors: readonly FieldError[], path: string): string | undefined {
  return errors.find((e) => e.field === path)?.message;
}

function Owner({ field }: { field: FieldSchema }) {
  const owner = field['x-authority'];
  return owner === undefined ? null : <span class="owner">owned by {owner}</span>;
}

function Scalar({ id, path, field, value, onChange, errors, refs }: ControlProps) {
  const text = typeof value === 'string' ? value : '';
  const error = errorAt(errors, path);
  const described = error === undefined ? `${id}-help` : `${id}-help ${id}-error`;
  const common = {
    id,
    name: path,
    'aria-invalid': error === undefined ? undefined : ('true' as const),
    'aria-describedby': described,
  };
  const ref = field['x-ref'];
  let control;
  if (field.enum !== undefined || field.type === 'boolean') {
    const choices = field.enum?.map(String) ?? ['true', 'false'];
    control = (
      <select
        {...common}
        value={text}
        onChange={(e) => {
          onChange(e.currentTarget.value);
        }}
      >
        <option value="">(not set)</option>
        {choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else if (ref !== undefined && refs[ref] !== undefined) {
    const names = refs[ref];
    control = (
      <select
        {...common}
        value={text}
        onChange={(e) => {
          onChange(e.currentTarget.value);
        }}
      >
        <option value="">(none)</option>
        {names.includes(text) || text === '' ? null : <option value={text}>{text}</option>}
        {names.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else {
    control = (
      <input
        {...common}
        type="text"
        inputMode={field.type === 'integer' || field.type === 'number' ? 'numeric' : undefined}
        value={text}
        onInput={(e) => {
          onChange(e.currentTarget.value);
        }}
      />
    );
  }
  return (
    <>
      {control}
      <small id={`${id}-help`} class="help">
        {field.description ?? ''}
        {field.type === 'array' ? ' (comma-separated)' : ''}
        {ref === undefined ? '' : ` → ${ref}`}
      </small>
      {error === undefined ? null : (
        <small id={`${id}-error`} class="field-error" role="alert">
          {error}
        </small>
      )}
    </>
  );
}

function MapList({ id, path, field, value, onChange, errors, refs }: ControlProps) {
  const rows = Array.isArray(value) ? value : [];
  const itemFields = Object.entries(field.items?.properties ?? {});
  const emptyRow = (): FormValue => Object.fromEntries(itemFields.map(([name]) => [name, '']));
  return (
    <fieldset class="map-list">
      <legend>
        {path} <Owner field={field} />
      </legend>
      <small class="help">{field.description ?? ''}</small>
      {rows.map((row, i) => (
        <div class="map-row" key={i}>
          {itemFields.map(([name, sub]) => {
            const subId = `${id}-${i}-${name}`;
            const cell = (row as Record<string, FormValue>)[name];
            return (
              <div class="field" key={name}>
                <label for={subId}>
                  {name} <Owner field={sub} />
                </label>
                <Scalar
                  id={subId}
                  path={`${path}/${i}/${name}`}
                  field={sub}
                  value={cell}
                  errors={errors}
                  refs={refs}
                  onChange={(v) => {
                    onChange(
                      rows.map((r, j) => (j === i ? { ...(r as Record<string, FormValue>), [name]: v } : r)),
                    );
                  }}
                />
              </div>
            );
          })}
          <button
            type="button"
            class="secondary"
            onClick={() => {
              onChange(rows.filter((_, j) => j !== i));
            }}
          >
            Remove {path} row {i + 1}
          </button>
        </div>
      ))}
      <button
        type="button"
        class="secondary"
        onClick={() => {
          onChange([...rows, emptyRow()]);
        }}
      >
        Add {path} row
      </button>
      {errorAt(errors, path) === undefined ? null : (
        <small class="field-error" role="alert">
          {errorAt(errors, path)}
        </small>
      )}
    </fieldset>
  );
}

function ObjectFields({ id, path, field, value, onChange, errors, refs }: ControlProps) {
  const object = (typeof value === 'object' && !Array.isArray(value) ? value : {}) as Record<
    string,
    FormValue
  >;
  return (
    <fieldset class="object">
      <legend>
        {path} <Owner field={field} />
      </legend>
      <small class="help">{field.description ?? ''}</small>
      {Object.entries(field.properties ?? {}).map(([name, sub]) => (
        <div class="field" key={name}>
          <label for={`${id}-${name}`}>{name}</label>
          <Scalar
            id={`${id}-${name}`}
            path={`${path}/${name}`}
            field={sub}
            value={object[name]}
            errors={errors}
            refs={refs}
            onChange={(v) => {
              onChange({ ...object, [name]: v });
            }}
          />
        </div>
      ))}
      {errorAt(errors, path) === undefined ? null : (
        <small class="field-error" role="alert">
          {errorAt(errors, path)}
        </small>
      )}
    </fieldset>
  );
}

/** The generated form's fields (the caller wraps them in a `<form>` with its own buttons). */
export function SchemaFields({
  doc,
  state,
  onChange,
  errors,
  refs,
}: {
  doc: KindDocument;
  state: FormState;
  onChange: (state: FormState) => void;
  errors: readonly FieldError[];
  refs: Record<string, string[]>;
}) {
  return (
    <div class="schema-fields">
      {formFields(doc).map(([name, field]) => {
        const props: ControlProps = {
          id: `attr-${name}`,
          path: name,
          field,
          value: state[name],
          errors,
          refs,
          onChange: (value) => {
            onChange({ ...state, [name]: value });
          },
        };
        if (field.type === 'array' && field['x-list-type'] === 'map')
          return <MapList key={name} {...props} />;
        if (field.type === 'object' && field.properties !== undefined)
          return <ObjectFields key={name} {...props} />;
        return (
          <div class="field" key={name}>
            <label for={props.id}>
              {name} <Owner field={field} />
            </label>
            <Scalar {...props} />
          </div>
        );
      })}
    </div>
  );
}

/** A change form: fields before the schema's (a new node's name), the schema's fields, what is wrong, and Explain
 * beside the submit button; nothing is sent while a value does not fit the schema. */
export function ChangeForm({
  children,
  fields,
  error,
  busy,
  submitLabel,
  onSend,
}: {
  children?: ComponentChildren;
  fields: Parameters<typeof SchemaFields>[0];
  error: unknown;
  busy: boolean;
  submitLabel: string;
  onSend: (mode: 'explain' | 'submit') => void;
}) {
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        onSend('submit');
      }}
    >
      {children}
      <SchemaFields {...fields} />
      {fields.errors.length > 0 ? (
        <p class="field-error" role="alert">
          {fields.errors.length} value(s) do not fit the schema; nothing was sent.
        </p>
      ) : null}
      <ErrorBanner error={error} />
      <div class="row">
        <button
          type="button"
          class="secondary"
          disabled={busy}
          onClick={() => {
            onSend('explain');
          }}
        >
          Explain
        </button>
        <button type="submit" disabled={busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}
