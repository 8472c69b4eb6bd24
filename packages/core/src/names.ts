import { InvalidNameError } from './errors.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const KIND = /^[a-z][a-z0-9-]{0,62}$/;

/** True when `name` is a lowercase DNS name of 1–253 characters (labels of 1–63 of a-z, 0-9, '-'). */
export function isNodeName(name: string): boolean {
  if (name.length < 1 || name.length > 253) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/** Checks a node name; throws `InvalidNameError` naming the rule it breaks. */
export function assertNodeName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidNameError('node name must be a string');
  if (!isNodeName(name)) {
    throw new InvalidNameError(
      `invalid node name "${name}": must be a lowercase DNS name of 1-253 characters (a-z, 0-9, '-' and '.', labels of at most 63 characters, not starting or ending with '-')`,
      { details: { name } },
    );
  }
}

/** True when `kind` is a valid kind name: lowercase letters, digits and '-', starting with a letter. */
export function isKindName(kind: string): boolean {
  return KIND.test(kind);
}

/** Checks a kind name; throws `InvalidNameError`. */
export function assertKindName(kind: unknown): asserts kind is string {
  if (typeof kind !== 'string' || !isKindName(kind)) {
    throw new InvalidNameError(
      `invalid kind "${String(kind)}": must start with a letter and use only a-z, 0-9 and '-' (at most 63 characters)`,
      { details: { kind } },
    );
  }
}
