/**
 * The etcd key layout of DESIGN.md §5 and the order-preserving encodings that make key order the dispatch order.
 * Every key here is relative to the coordinator's prefix.
 */

/** Length of a lease id in hex, as it appears in election and lock keys. */
export const leaseHexLength = 16;
const leaseHexPattern = /^[0-9a-f]{16}$/;

/** Length of an encoded priority and of an encoded sequence. */
const sortableLength = 16;
/** Width of an encoded due time: milliseconds since the epoch, zero-padded (good until the year 33658). */
const dueWidth = 15;

/** The lease id (a decimal string, as etcd3 returns it) in fixed-width hex. */
export function leaseHex(leaseId: string): string {
  return BigInt(leaseId).toString(16).padStart(leaseHexLength, '0');
}

/** True when `key` is a direct waiter under `root` (`<root><leaseHex>`), not one of a nested name. */
export function isWaiterKey(root: string, key: string): boolean {
  return key.startsWith(root) && leaseHexPattern.test(key.slice(root.length));
}

/**
 * Where the candidates of an election wait: DESIGN's `master/elect/<leaseHex>`, generalised to named elections as
 * `master/elect/<election>/<leaseHex>`.
 */
export function electionRoot(election: string): string {
  return `master/elect/${election}/`;
}

/** Where the waiters of a lock wait: `locks/<key>/<leaseHex>` (for example `locks/node/n1/<leaseHex>`). */
export function lockRoot(key: string): string {
  return `locks/${key}/`;
}

/** The root of a queue; the name is escaped so that no queue's keys fall under another's. */
export function queueRoot(queue: string): string {
  return `q/${encodeURIComponent(queue)}/`;
}

/** Where notifications on topics are put; topics are not escaped, so that a topic prefix is a key prefix. */
export const notifyRoot = 'notify/';

/**
 * Encodes a finite number so that the byte order of the encodings is the numeric order: the IEEE 754 bits with
 * the sign bit flipped for positives and every bit flipped for negatives, in 16 hex digits.
 */
export function encodePriority(priority: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, priority === 0 ? 0 : priority);
  const bits = view.getBigUint64(0);
  const signBit = 1n << 63n;
  const sortable = (bits & signBit) === 0n ? bits | signBit : ~bits & 0xffff_ffff_ffff_ffffn;
  return sortable.toString(16).padStart(sortableLength, '0');
}

/** Encodes a due time (ms since the epoch) as fixed-width decimal, so that key order is due order. */
export function encodeDue(ms: number): string {
  return String(Math.max(0, Math.ceil(ms))).padStart(dueWidth, '0');
}

/** Decodes `encodeDue`; NaN for anything else. */
export function decodeDue(encoded: string): number {
  return /^\d+$/.test(encoded) ? Number(encoded) : Number.NaN;
}

/**
 * A sequence in 16 hex digits: 12 of milliseconds and 4 of a counter. `next()` is strictly increasing within a
 * process; across processes the order is the clocks' order, which is all FIFO can mean without a shared counter.
 */
export class SequenceClock {
  #ms = 0;
  #counter = 0;

  /** The next sequence at wall-clock `nowMs`. */
  next(nowMs: number): string {
    const ms = Math.floor(nowMs);
    if (ms > this.#ms) {
      this.#ms = ms;
      this.#counter = 0;
    } else if (this.#counter === 0xffff) {
      this.#ms += 1;
      this.#counter = 0;
    } else {
      this.#counter += 1;
    }
    return sequenceAt(this.#ms, this.#counter);
  }
}

/** The sequence of a task that became ready at `ms`: a promoted delayed task keeps its due time as its place. */
export function sequenceAt(ms: number, counter = 0): string {
  const millis = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${millis}${counter.toString(16).padStart(4, '0')}`;
}

/** The relative keys of one queue. */
export class QueueKeys {
  readonly root: string;
  readonly tasks: string;
  readonly ready: string;
  readonly delayed: string;
  readonly claims: string;
  readonly dlq: string;

  constructor(queue: string) {
    this.root = queueRoot(queue);
    this.tasks = `${this.root}tasks/`;
    this.ready = `${this.root}ready/`;
    this.delayed = `${this.root}delayed/`;
    this.claims = `${this.root}claims/`;
    this.dlq = `${this.root}dlq/`;
  }

  task(id: string): string {
    return this.tasks + id;
  }

  claim(id: string): string {
    return this.claims + id;
  }

  dead(id: string): string {
    return this.dlq + id;
  }

  /** `ready/<prio>/<seq>/<id>`: key order is dispatch order. */
  readyKey(priority: number, sequence: string, id: string): string {
    return `${this.ready}${encodePriority(priority)}/${sequence}/${id}`;
  }

  /** `delayed/<notBeforeMs>/<id>`: key order is due order. */
  delayedKey(notBeforeMs: number, id: string): string {
    return `${this.delayed}${encodeDue(notBeforeMs)}/${id}`;
  }

  /** The task id of a ready key; undefined when the key is not one. */
  idOfReady(key: string): string | undefined {
    const offset = this.ready.length + sortableLength + 1 + sortableLength + 1;
    return key.startsWith(this.ready) && key.length > offset ? key.slice(offset) : undefined;
  }

  /** The due time and task id of a delayed key; undefined when the key is not one. */
  parseDelayed(key: string): { readonly due: number; readonly id: string } | undefined {
    if (!key.startsWith(this.delayed)) return undefined;
    const rest = key.slice(this.delayed.length);
    const due = decodeDue(rest.slice(0, dueWidth));
    if (Number.isNaN(due) || rest[dueWidth] !== '/' || rest.length <= dueWidth + 1) return undefined;
    return { due, id: rest.slice(dueWidth + 1) };
  }

  /** The upper bound (exclusive) of the delayed keys due at or before `nowMs`. */
  delayedDueEnd(nowMs: number): string {
    return `${this.delayed}${encodeDue(Math.floor(nowMs) + 1)}`;
  }
}
