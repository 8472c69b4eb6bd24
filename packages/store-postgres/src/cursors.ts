/** Opaque page cursors: base64url of the last node's name, or of the last job's creation time and id. */
import { InputError } from '@consortium/core';

/** The cursor after the node named `name`. */
export function encodeNodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

/** The node name inside a cursor; throws `InputError` for anything `encodeNodeCursor` did not make. */
export function decodeNodeCursor(cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (name === '' || encodeNodeCursor(name) !== cursor) throw new InputError('Invalid cursor');
  return name;
}

/** The position of a job in the newest-first order. */
export interface JobPosition {
  readonly createdAt: number;
  readonly id: string;
}

/** The cursor after the job at `position`. */
export function encodeJobCursor(position: JobPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), 'utf8').toString('base64url');
}

/** The job position inside a cursor; throws `InputError` for anything `encodeJobCursor` did not make. */
export function decodeJobCursor(cursor: string): JobPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InputError('Invalid cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new InputError('Invalid cursor');
  const [createdAt, id] = parsed as unknown[];
  if (typeof createdAt !== 'number' || typeof id !== 'string') throw new InputError('Invalid cursor');
  const position = { createdAt, id };
  if (encodeJobCursor(position) !== cursor) throw new InputError('Invalid cursor');
  return position;
}
