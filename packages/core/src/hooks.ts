/**
 * Hooks (webhooks): other systems subscribe to events (a job ended, a node was created, changed, deleted or drifted)
 * and Consortium POSTs each event to them, signed as Stripe signs its webhooks: `Consortium-Signature:
 * t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the hook's secret>`. A delivery is one event
 * for one hook; its id is `<hook id>:<event id>`, so the same event never makes two deliveries for one hook.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InputError } from './errors.js';
import type { JsonObject } from './model.js';

/** The events a hook may subscribe to. */
export const HOOK_EVENTS = [
  'job.succeeded',
  'job.failed',
  'job.expired',
  'node.created',
  'node.changed',
  'node.deleted',
  'node.drift',
] as const;

/** One of `HOOK_EVENTS`. */
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** True when `value` names a hook event. */
export function isHookEvent(value: unknown): value is HookEvent {
  return typeof value === 'string' && (HOOK_EVENTS as readonly string[]).includes(value);
}

/** A subscription: where to POST which events, and the secret deliveries are signed with. */
export interface HookRecord {
  readonly id: string;
  /** An `http:` or `https:` URL. */
  readonly url: string;
  readonly events: readonly HookEvent[];
  /** Only events about nodes of this kind (job events included); every kind when absent. */
  readonly kind?: string;
  /** A search query (the language of `GET /api/search`) the event's node must match. */
  readonly filter?: string;
  /** Signs deliveries; written once, never shown again by the API. */
  readonly secret: string;
  /** A disabled hook gets no deliveries; one that keeps failing is disabled. */
  readonly enabled: boolean;
  /** Failed attempts since the last success (any delivery of the hook). */
  readonly consecutiveFailures: number;
  readonly createdAt: number;
  /** Who made it (a token id or `dev`). */
  readonly actor: string;
}

/** The states of a delivery: waiting for (another) attempt, received by the hook, or given up. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One attempt at a delivery: the HTTP status the receiver answered, or why there was none. */
export interface DeliveryAttempt {
  readonly at: number;
  readonly status?: number;
  readonly error?: string;
  readonly durationMs: number;
}

/** One event for one hook, with every attempt at sending it (the newest `MAX_ATTEMPT_LOG`). */
export interface DeliveryRecord {
  /** `<hook id>:<event id>` (see `deliveryId`). */
  readonly id: string;
  readonly hookId: string;
  readonly event: HookEvent;
  readonly eventId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** The body POSTed on every attempt, byte for byte the same JSON. */
  readonly payload: JsonObject;
  readonly lastStatus?: number;
  readonly lastError?: string;
  readonly log: readonly DeliveryAttempt[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly deliveredAt?: number;
}

/** Fields of a delivery its sender updates after each attempt. */
export type DeliveryPatch = Partial<
  Pick<
    DeliveryRecord,
    'status' | 'attempts' | 'lastStatus' | 'lastError' | 'log' | 'updatedAt' | 'deliveredAt'
  >
>;

/** Attempts a delivery record keeps in its log. */
export const MAX_ATTEMPT_LOG = 20;

/** The id of the delivery of one event to one hook: the same event and hook always give the same id. */
export function deliveryId(hookId: string, eventId: string): string {
  return `${hookId}:${eventId}`;
}

/**
 * A hook after one attempt of one of its deliveries: a success resets its failures, a failure counts one, and the
 * failure that reaches `maxFailures` disables it (`disabled` is true only for that one).
 */
export function hookAfterAttempt(
  hook: HookRecord,
  succeeded: boolean,
  maxFailures: number,
): { readonly hook: HookRecord; readonly disabled: boolean } {
  if (succeeded) return { hook: { ...hook, consecutiveFailures: 0 }, disabled: false };
  const consecutiveFailures = hook.consecutiveFailures + 1;
  const disabled = hook.enabled && consecutiveFailures >= maxFailures;
  return { hook: { ...hook, consecutiveFailures, enabled: hook.enabled && !disabled }, disabled };
}

/** The delivery after `patch`; fields the patch leaves out stay. */
export function applyDeliveryPatch(delivery: DeliveryRecord, patch: DeliveryPatch): DeliveryRecord {
  return { ...delivery, ...patch };
}

/** The `Consortium-Signature` header of a body sent at `timestamp` (unix seconds). */
export function signDelivery(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/**
 * Checks a `Consortium-Signature` header as a receiver should: the header parses, a `v1` signature matches the HMAC
 * of `"<t>.<body>"` under `secret` (compared in constant time), and `t` is within `toleranceSeconds` of `now`
 * (unix seconds), which stops replays of old deliveries. Throws `InputError` saying which check failed.
 */
export function verifyDeliverySignature(
  header: string,
  secret: string,
  body: string,
  now: number,
  toleranceSeconds = 300,
): void {
  const parts = header.split(',').map((part) => part.trim().split('='));
  const t = parts.find(([key]) => key === 't')?.[1];
  const signatures = parts.filter(([key]) => key === 'v1').map(([, value]) => value ?? '');
  if (t === undefined || !/^[0-9]{1,12}$/.test(t) || signatures.length === 0) {
    throw new InputError('the signature header is not t=<seconds>,v1=<hex>');
  }
  const expected = Buffer.from(signDelivery(secret, Number(t), body).split('v1=')[1] ?? '', 'hex');
  const matches = signatures.some((sig) => {
    const given = Buffer.from(sig, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new InputError('the signature does not match the body and the secret');
  if (Math.abs(now - Number(t)) > toleranceSeconds) {
    throw new InputError(`the signature's timestamp is more than ${toleranceSeconds} s from now`);
  }
}
