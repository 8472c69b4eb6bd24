/**
 * A helper for providers: a mutable collector for one task's answer (each update answered once), turned into an
 * outcome with empty parts left out.
 */
import type { JsonValue, ProposedUpdate } from './model.js';
import type { ExplainOutcome, Operation } from './provider.js';

/** Collects accepted, deferred and rejected ids, reported values and operations of one task. */
export class OutcomeBuilder {
  private readonly accepted: string[] = [];
  private readonly deferred: { id: string; reason: string; waitFor: string[] }[] = [];
  private readonly rejected: { id: string; reason: string }[] = [];
  private readonly answered = new Set<string>();
  readonly set: Record<string, JsonValue> = {};
  readonly unset: string[] = [];
  readonly later: string[] = [];
  readonly operations: Operation[] = [];

  /** Accepts updates not answered yet. */
  accept(...updates: readonly (ProposedUpdate | undefined)[]): void {
    for (const update of updates) {
      if (update === undefined || this.answered.has(update.id)) continue;
      this.answered.add(update.id);
      this.accepted.push(update.id);
    }
  }

  /** Defers updates not answered yet until one of `waitFor` changes. */
  defer(
    reason: string,
    waitFor: readonly string[],
    ...updates: readonly (ProposedUpdate | undefined)[]
  ): void {
    for (const update of updates) {
      if (update === undefined || this.answered.has(update.id)) continue;
      this.answered.add(update.id);
      this.deferred.push({ id: update.id, reason, waitFor: [...waitFor] });
    }
  }

  /** Rejects updates not answered yet, all for one reason. */
  reject(reason: string, ...updates: readonly (ProposedUpdate | undefined)[]): void {
    for (const update of updates) {
      if (update === undefined || this.answered.has(update.id)) continue;
      this.answered.add(update.id);
      this.rejected.push({ id: update.id, reason });
    }
  }

  /** True when the update has been answered. */
  isAnswered(update: ProposedUpdate): boolean {
    return this.answered.has(update.id);
  }

  /** The outcome; `later` is kept only when `explain` is true (it is an explain-only answer). */
  build(explain = false): ExplainOutcome {
    return {
      ...(this.accepted.length > 0 ? { accepted: this.accepted } : {}),
      ...(this.deferred.length > 0 ? { deferred: this.deferred } : {}),
      ...(this.rejected.length > 0 ? { rejected: this.rejected } : {}),
      ...(Object.keys(this.set).length > 0 ? { set: this.set } : {}),
      ...(this.unset.length > 0 ? { unset: this.unset } : {}),
      ...(explain && this.later.length > 0 ? { later: this.later } : {}),
      ...(this.operations.length > 0 ? { operations: this.operations } : {}),
    };
  }
}
