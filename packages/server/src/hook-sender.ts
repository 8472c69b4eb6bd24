/**
 * The hook sender: claims deliveries from the `hooks` queue and POSTs each to its hook, signed. It runs beside the
 * worker (on every process that hosts the worker role, leader or not): a delivery is an outgoing network call that
 * may wait seconds on a slow receiver, like a provider task, so it scales with the workers and never holds up the
 * master's job loop. A failed attempt goes back to the queue, which retries it with exponential backoff; the
 * attempt that makes a hook fail `maxFailures` times in a row disables it and writes an audit entry.
 */
import type {
  ClaimedTask,
  Clock,
  Coordinator,
  DeliveryAttempt,
  DeliveryRecord,
  HookRecord,
  Queue,
  Store,
} from '@consortium/core';
import { CancelledError, MAX_ATTEMPT_LOG, isJsonObject, signDelivery, toErrorInfo } from '@consortium/core';
import type winston from 'winston';
import { HOOK_QUEUE } from './hooks.js';
import type { Runnable } from './runnable.js';
import { stopped } from './runnable.js';

/** What a sender needs, and its limits (`hooks` in the config). */
export interface HookSenderDeps {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly clock: Clock;
  readonly logger: winston.Logger;
  /** Attempts of one delivery; the last failure marks it `failed`. */
  readonly maxAttempts: number;
  /** Failed attempts in a row (any delivery of the hook) that disable it. */
  readonly maxFailures: number;
  readonly timeoutMs: number;
  /** Deliveries sent at once by this process. */
  readonly concurrency: number;
}

/** The outcome of one POST. */
interface Sent {
  readonly ok: boolean;
  readonly attempt: DeliveryAttempt;
}

/** Who the audit log names for what the sender does on its own. */
const SYSTEM_ACTOR = 'system';

/** The hook sender role. */
export class HookSender implements Runnable {
  readonly name = 'hook-sender';
  readonly needsLeader = false;

  /** Makes a sender over its dependencies. */
  constructor(private readonly deps: HookSenderDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(Array.from({ length: this.deps.concurrency }, (_, i) => this.loop(i, signal)));
  }

  private async loop(slot: number, signal: AbortSignal): Promise<void> {
    const { coordinator, logger, clock } = this.deps;
    const queue = coordinator.queue(HOOK_QUEUE);
    while (!signal.aborted) {
      let claimed: ClaimedTask;
      try {
        claimed = await queue.claim(`${coordinator.memberId}/hooks/${slot}`, signal);
      } catch (error) {
        if (error instanceof CancelledError || stopped(signal)) return;
        logger.error('claiming a hook delivery failed', { error: (error as Error).message });
        await clock.sleep(500, signal);
        continue;
      }
      try {
        await this.handle(queue, claimed);
      } catch (error) {
        // The store or etcd failed around the attempt: the delivery runs again after the queue's backoff.
        logger.warn('a hook delivery failed before its outcome was recorded; it is retried', {
          delivery: claimed.id,
          error: (error as Error).message,
        });
        await queue.fail(claimed, toErrorInfo(error)).catch(() => undefined);
      }
    }
  }

  /** One claimed delivery: send it unless already delivered or moot, record the attempt, ack or fail the task. */
  private async handle(queue: Queue, claimed: ClaimedTask): Promise<void> {
    const { store, clock, logger } = this.deps;
    const id = isJsonObject(claimed.payload) ? claimed.payload['delivery'] : undefined;
    const delivery = typeof id === 'string' ? await store.getDelivery(id) : undefined;
    if (delivery === undefined || delivery.status !== 'pending') {
      // Delivered already (a retry after a lost ack), given up, or its hook deleted: nothing to send.
      await queue.ack(claimed);
      return;
    }
    const hook = await store.getHook(delivery.hookId);
    if (hook === undefined || !hook.enabled) {
      await store.updateDelivery(delivery.id, {
        status: 'failed',
        lastError: hook === undefined ? 'the hook was deleted' : 'the hook is disabled',
        updatedAt: clock.now(),
      });
      await queue.ack(claimed);
      return;
    }
    const sent = await this.post(hook, delivery);
    const last = claimed.attempt >= this.deps.maxAttempts;
    const { disabled } = await store.recordHookAttempt(hook.id, sent.ok, this.deps.maxFailures);
    const status = sent.ok ? 'delivered' : last || disabled ? 'failed' : 'pending';
    await store.updateDelivery(delivery.id, {
      status,
      attempts: delivery.attempts + 1,
      ...(sent.attempt.status === undefined ? {} : { lastStatus: sent.attempt.status }),
      ...(sent.attempt.error === undefined ? {} : { lastError: sent.attempt.error }),
      log: [...delivery.log, sent.attempt].slice(-MAX_ATTEMPT_LOG),
      updatedAt: sent.attempt.at,
      ...(sent.ok ? { deliveredAt: sent.attempt.at } : {}),
    });
    if (disabled) await this.auditDisabled(hook);
    if (status === 'pending') {
      await queue.fail(claimed, {
        code: 'BACKEND_UNAVAILABLE',
        message: sent.attempt.error ?? `HTTP ${sent.attempt.status ?? 0}`,
        retryable: true,
      });
    } else await queue.ack(claimed);
    logger.debug('hook delivery attempted', { delivery: delivery.id, status, attempt: claimed.attempt });
  }

  /** POSTs the delivery's body, signed now; any 2xx is success, anything else (a redirect too) a failure. */
  private async post(hook: HookRecord, delivery: DeliveryRecord): Promise<Sent> {
    const { clock, timeoutMs } = this.deps;
    const body = JSON.stringify(delivery.payload);
    const started = clock.now();
    const timestamp = Math.floor(started / 1000);
    try {
      const response = await fetch(hook.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Consortium-Hooks',
          'consortium-event': delivery.event,
          'consortium-delivery': delivery.id,
          'consortium-signature': signDelivery(hook.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Read (and drop) the answer so the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
      const ok = response.status >= 200 && response.status < 300;
      return {
        ok,
        attempt: {
          at: started,
          status: response.status,
          ...(ok ? {} : { error: `the receiver answered HTTP ${response.status}` }),
          durationMs: clock.now() - started,
        },
      };
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why = [cause?.code, cause?.message, (error as Error).message].find((v) => typeof v === 'string');
      const reason = timedOut
        ? `no answer within ${timeoutMs} ms`
        : `cannot reach the receiver: ${why ?? 'unknown'}`;
      return { ok: false, attempt: { at: started, error: reason, durationMs: clock.now() - started } };
    }
  }

  /** The audit entry of a hook the sender disabled. */
  private async auditDisabled(hook: HookRecord): Promise<void> {
    const { store, clock, logger, maxFailures } = this.deps;
    logger.warn('hook disabled: its deliveries kept failing', { hook: hook.id, url: hook.url, maxFailures });
    await store.appendAudit({
      at: clock.now(),
      actor: SYSTEM_ACTOR,
      action: 'hook:disabled',
      kind: 'hook',
      name: hook.id,
      before: { url: hook.url, enabled: true },
      after: { url: hook.url, enabled: false, consecutiveFailures: maxFailures },
    });
  }
}
