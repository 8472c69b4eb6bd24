/** The node model: JSON values, nodes addressed by (kind, name), and proposed updates to their attributes. */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

/** A node's attributes: top-level keys are attribute names. */
export type Attrs = JsonObject;

/** One managed thing. `revision` grows by one on every write and is the node's ETag. */
export interface Node {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Attrs;
  readonly revision: number;
}

/** Where a node is addressed. */
export interface NodeRef {
  readonly kind: string;
  readonly name: string;
}

/**
 * What an update does: `set`/`unset` a value; `add`/`remove` one item of a set list; `merge` an object into an
 * object or a map-list item; `sync` is added by the planner for a watcher of a path that changed.
 */
export type UpdateOp = 'set' | 'unset' | 'add' | 'remove' | 'merge' | 'sync';

/** Who asked for an update: the user, a provider (by name), or the core itself. */
export type UpdateOrigin = string;

/** The origin of updates that come from the request. */
export const USER_ORIGIN = 'user';

/** The origin and authority of attributes the core owns itself (`present`). */
export const CORE_PROVIDER = 'core';

/** The attribute that says a node exists; deleting a node is `unset present`. */
export const PRESENT_ATTR = 'present';

/** One requested change to one path of one node. */
export interface ProposedUpdate {
  readonly id: string;
  readonly path: string;
  readonly op: UpdateOp;
  readonly value?: JsonValue;
  readonly origin: UpdateOrigin;
  readonly reason?: string;
}

/** An update as a request states it, before the planner gives it an id. */
export type UpdateRequest = Omit<ProposedUpdate, 'id' | 'origin'>;

/** The formatted name of a node, for messages: `host/web-01`. */
export function refString(ref: NodeRef): string {
  return `${ref.kind}/${ref.name}`;
}

/** True when a value is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
