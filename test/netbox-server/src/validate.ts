/**
 * Writes as NetBox validates them: DRF field validation first (every field's errors at once, keyed by field),
 * then the model's `full_clean()` (its `clean()` and unique constraints; model-level messages under `__all__`).
 * Messages are NetBox's and DRF's own (netbox/utilities/api.py `get_related_object_by_attrs`,
 * netbox/netbox/api/fields.py `ChoiceField`, virtualization/models/virtualmachines.py `clean()` and constraints).
 */
import type { FieldErrors } from './errors.js';
import { addError, validationError } from './errors.js';
import { pyRepr, pyInt, pyStr, pyType } from './python.js';
import type { BaseRecord, CustomFieldRecord, NetboxState, TagRecord, VirtualMachineRecord } from './state.js';
import { VM_STATUSES } from './state.js';

type Body = Record<string, unknown>;

const has = (body: Body, field: string): boolean => Object.hasOwn(body, field);

/** Refuses a body that is not a JSON object, as DRF does. */
export function expectObject(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validationError({
      non_field_errors: [`Invalid data. Expected a dictionary, but got ${pyType(body)}.`],
    });
  }
  return body as Body;
}

/**
 * Resolves a reference to a related object the way NetBox's nested serializers do: a numeric id (or a numeric
 * string), a dictionary of attributes, or null. Records an error and returns undefined when it cannot.
 */
function related<R extends BaseRecord>(
  records: readonly R[],
  value: unknown,
  errors: FieldErrors,
  field: string,
  attributes: (record: R) => Record<string, unknown>,
): R | null | undefined {
  if (value === null) return null;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const wanted = Object.entries(value as Body);
    const known = records[0] === undefined ? [] : Object.keys(attributes(records[0]));
    const unknown = wanted.find(([key]) => records.length > 0 && !known.includes(key));
    if (unknown !== undefined) {
      addError(errors, field, `Cannot resolve keyword '${unknown[0]}' into field.`);
      return undefined;
    }
    const matches = records.filter((r) => {
      const attrs = attributes(r);
      return wanted.every(([key, v]) => String(attrs[key]) === String(v));
    });
    if (matches.length === 1) return matches[0];
    addError(
      errors,
      field,
      matches.length === 0
        ? `Related object not found using the provided attributes: ${pyRepr(value)}`
        : `Multiple objects match the provided attributes: ${pyRepr(value)}`,
    );
    return undefined;
  }
  const id = pyInt(value);
  if (id === undefined) {
    addError(
      errors,
      field,
      `Related objects must be referenced by numeric ID or by dictionary of attributes. Received an unrecognized value: ${pyStr(value)}`,
    );
    return undefined;
  }
  const found = records.find((r) => r.id === id);
  if (found === undefined) {
    addError(errors, field, `Related object not found using the provided numeric ID: ${id}`);
    return undefined;
  }
  return found;
}

/** DRF `CharField` validation; returns the trimmed string or undefined after recording an error. */
function charField(
  value: unknown,
  errors: FieldErrors,
  field: string,
  options: { maxLength?: number; allowBlank: boolean },
): string | undefined {
  if (value === null) {
    addError(errors, field, 'This field may not be null.');
    return undefined;
  }
  if (typeof value === 'boolean' || typeof value === 'object') {
    addError(errors, field, 'Not a valid string.');
    return undefined;
  }
  // DRF's CharField takes numbers too and turns them into text.
  const text = (typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '').trim();
  if (text === '' && !options.allowBlank) {
    addError(errors, field, 'This field may not be blank.');
    return undefined;
  }
  if (options.maxLength !== undefined && text.length > options.maxLength) {
    addError(errors, field, `Ensure this field has no more than ${options.maxLength} characters.`);
    return undefined;
  }
  return text;
}

/** NetBox's `ChoiceField.to_internal_value`. */
function choiceField(
  value: unknown,
  choices: Readonly<Record<string, string>>,
  errors: FieldErrors,
  field: string,
): string | undefined {
  const data = value ?? '';
  if (data === '') {
    addError(errors, field, 'This field may not be blank.');
    return undefined;
  }
  if (typeof data === 'object') {
    addError(
      errors,
      field,
      'Value must be passed directly (e.g. "foo": 123); do not use a dictionary or list.',
    );
    return undefined;
  }
  if (typeof data === 'string' && Object.hasOwn(choices, data)) return data;
  addError(errors, field, `${pyStr(data)} is not a valid choice.`);
  return undefined;
}

/** `CustomField.validate` for the supported types; returns the message of the first problem. */
function customFieldProblem(field: CustomFieldRecord, value: unknown): string | undefined {
  if (value === null) return undefined;
  const choiceSet = `${field.name} choices`;
  switch (field.type) {
    case 'text':
    case 'longtext':
      return typeof value === 'string' ? undefined : 'Value must be a string.';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? undefined : 'Value must be an integer.';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'Value must be true or false.';
    case 'json':
      return undefined;
    case 'select':
      return typeof value === 'string' && field.choices.includes(value)
        ? undefined
        : `Invalid choice (${pyStr(value)}) for choice set ${choiceSet}.`;
    case 'multiselect': {
      if (!Array.isArray(value)) return 'Value must be a list.';
      const bad = value.filter((v) => typeof v !== 'string' || !field.choices.includes(v));
      return bad.length === 0
        ? undefined
        : `Invalid choice(s) (${bad.map(pyStr).join(', ')}) for choice set ${choiceSet}.`;
    }
  }
}

/**
 * Validates a POST (no `existing`) or PATCH of a virtual machine and returns the record to store. Throws
 * `NetboxHttpError` 400 with NetBox's field errors.
 */
export function writeVirtualMachine(
  state: NetboxState,
  input: unknown,
  existing: VirtualMachineRecord | undefined,
): Omit<VirtualMachineRecord, 'id' | 'created' | 'last_updated'> {
  const body = expectObject(input);
  const errors: FieldErrors = {};
  const draft = {
    name: existing?.name ?? '',
    status: existing?.status ?? 'active',
    siteId: existing?.siteId ?? null,
    clusterId: existing?.clusterId ?? null,
    tenantId: existing?.tenantId ?? null,
    tagIds: [...(existing?.tagIds ?? [])],
    customFields: { ...(existing?.customFields ?? {}) },
    description: existing?.description ?? '',
    comments: existing?.comments ?? '',
  };
  if (has(body, 'name')) {
    const name = charField(body['name'], errors, 'name', { maxLength: 64, allowBlank: false });
    if (name !== undefined) draft.name = name;
  } else if (existing === undefined) addError(errors, 'name', 'This field is required.');
  if (has(body, 'status')) {
    const status = choiceField(body['status'], VM_STATUSES, errors, 'status');
    if (status !== undefined) draft.status = status;
  }
  if (has(body, 'site')) {
    const site = related(state.sites.all(), body['site'], errors, 'site', (s) => ({
      id: s.id,
      name: s.name,
      slug: s.slug,
    }));
    if (site !== undefined) draft.siteId = site?.id ?? null;
  }
  if (has(body, 'cluster')) {
    const cluster = related(state.clusters.all(), body['cluster'], errors, 'cluster', (c) => ({
      id: c.id,
      name: c.name,
    }));
    if (cluster !== undefined) draft.clusterId = cluster?.id ?? null;
  }
  if (has(body, 'tenant')) {
    const tenant = related(state.tenants.all(), body['tenant'], errors, 'tenant', (t) => ({
      id: t.id,
      name: t.name,
      slug: t.slug,
    }));
    if (tenant !== undefined) draft.tenantId = tenant?.id ?? null;
  }
  if (has(body, 'tags')) {
    const tags = body['tags'];
    if (!Array.isArray(tags)) {
      addError(errors, 'tags', `Expected a list of items but got type "${pyType(tags)}".`);
    } else {
      const resolved = tags.map((t: unknown) =>
        related<TagRecord>(state.tags.all(), t, errors, 'tags', (r) => ({
          id: r.id,
          name: r.name,
          slug: r.slug,
          color: r.color,
        })),
      );
      if (!resolved.includes(undefined)) {
        draft.tagIds = [
          ...new Set(resolved.filter((t): t is TagRecord => t !== null && t !== undefined).map((t) => t.id)),
        ];
      }
    }
  }
  if (has(body, 'custom_fields')) {
    const data = body['custom_fields'];
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      addError(
        errors,
        'custom_fields',
        'Invalid data format. Custom field data must be passed as a dictionary mapping field names to their values.',
      );
    } else {
      // An update starts from the existing data: custom fields not named are kept.
      draft.customFields = { ...draft.customFields, ...(data as Body) };
    }
  }
  for (const field of ['description', 'comments'] as const) {
    if (!has(body, field)) continue;
    const text = charField(body[field], errors, field, {
      allowBlank: true,
      ...(field === 'description' ? { maxLength: 200 } : {}),
    });
    if (text !== undefined) draft[field] = text;
  }
  if (Object.keys(errors).length > 0) throw validationError(errors);

  // full_clean(): custom fields (CustomFieldsMixin.clean), then VirtualMachine.clean(), then constraints.
  const fields = new Map(state.customFields.all().map((f) => [f.name, f]));
  for (const [name, value] of Object.entries(draft.customFields)) {
    const field = fields.get(name);
    if (field === undefined)
      throw validationError({ __all__: [`Unknown field name '${name}' in custom field data.`] });
    const problem = customFieldProblem(field, value);
    if (problem !== undefined)
      throw validationError({ __all__: [`Invalid value for custom field '${name}': ${problem}`] });
  }
  for (const field of fields.values()) {
    if (field.required && (draft.customFields[field.name] ?? null) === null)
      throw validationError({ __all__: [`Missing required custom field '${field.name}'.`] });
  }
  if (draft.siteId === null && draft.clusterId === null) {
    throw validationError({ __all__: ['A virtual machine must be assigned to a site and/or cluster.'] });
  }
  const cluster = state.clusters.get(draft.clusterId);
  const site = state.sites.get(draft.siteId);
  if (cluster !== undefined && site !== undefined && cluster.siteId !== null && cluster.siteId !== site.id) {
    throw validationError({
      cluster: [`The selected cluster (${cluster.name}) is not assigned to this site (${site.name}).`],
    });
  }
  if (draft.clusterId !== null) {
    const clash = [...state.virtualMachines.rows.values()].find(
      (v) =>
        v.id !== existing?.id &&
        v.clusterId === draft.clusterId &&
        v.tenantId === draft.tenantId &&
        v.name.toLowerCase() === draft.name.toLowerCase(),
    );
    if (clash !== undefined) {
      throw validationError({
        __all__: [
          draft.tenantId === null
            ? 'Virtual machine name must be unique per cluster.'
            : 'Virtual machine name must be unique per cluster and tenant.',
        ],
      });
    }
  }
  // VirtualMachine.save(): a VM without a site takes its cluster's.
  if (draft.siteId === null && cluster !== undefined) draft.siteId = cluster.siteId;
  return draft;
}

const SLUG = /^[-a-zA-Z0-9_]+$/;
const COLOR = /^[0-9a-f]{6}$/;

/** Validates a POST of a tag and returns the record to store. Throws `NetboxHttpError` 400. */
export function writeTag(
  state: NetboxState,
  input: unknown,
): Omit<TagRecord, 'id' | 'created' | 'last_updated'> {
  const body = expectObject(input);
  const errors: FieldErrors = {};
  const required = (field: string): string | undefined => {
    if (!has(body, field)) {
      addError(errors, field, 'This field is required.');
      return undefined;
    }
    return charField(body[field], errors, field, { maxLength: 100, allowBlank: false });
  };
  const name = required('name');
  const slug = required('slug');
  if (slug !== undefined && !SLUG.test(slug)) {
    addError(errors, 'slug', 'Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.');
  }
  let color = '9e9e9e';
  if (has(body, 'color')) {
    const text = charField(body['color'], errors, 'color', { maxLength: 6, allowBlank: false });
    if (text !== undefined && !COLOR.test(text))
      addError(errors, 'color', 'Enter a valid hexadecimal RGB color code.');
    else if (text !== undefined) color = text;
  }
  const description = has(body, 'description')
    ? charField(body['description'], errors, 'description', { maxLength: 200, allowBlank: true })
    : '';
  if (name !== undefined && state.tags.all().some((t) => t.name === name))
    addError(errors, 'name', 'tag with this name already exists.');
  if (slug !== undefined && state.tags.all().some((t) => t.slug === slug))
    addError(errors, 'slug', 'tag with this slug already exists.');
  if (Object.keys(errors).length > 0 || name === undefined || slug === undefined)
    throw validationError(errors);
  return { name, slug, color, description: description ?? '' };
}
