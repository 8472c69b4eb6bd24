/** A mutable collector for one task's answer, turned into an outcome with empty parts left out. */
import type { ExplainOutcome, JsonValue, Operation, ProposedUpdate } from '@consortium/plugin-api';

/** Collects accepted and rejected ids, reported values and operations of one task; each id is answered once. */
export class OutcomeBuilder {
  private readonly accepted: string[] = [];
  private readonly rejected: { id: string; reason: string }[] = [];
  private readonly answered = new Set<string>();
  readonly set: Record<string, JsonValue> = {};
  readonly unset: string[] = [];
  readonly operations: Operation[] = [];

  /** Accepts updates not answered yet. */
  accept(...updates: readonly ProposedUpdate[]): void {
    for (const update of updates) {
      if (this.answered.has(update.id)) continue;
      this.answered.add(update.id);
      this.accepted.push(update.id);
    }
  }

  /** Rejects updates not answered yet, all for one reason. */
  reject(reason: string, ...updates: readonly ProposedUpdate[]): void {
    for (const update of updates) {
      if (this.answered.has(update.id)) continue;
      this.answered.add(update.id);
      this.rejected.push({ id: update.id, reason });
    }
  }

  /** True when the update has been answered. */
  isAnswered(update: ProposedUpdate): boolean {
    return this.answered.has(update.id);
  }

  /** The outcome. */
  build(): ExplainOutcome {
    return {
      ...(this.accepted.length > 0 ? { accepted: this.accepted } : {}),
      ...(this.rejected.length > 0 ? { rejected: this.rejected } : {}),
      ...(Object.keys(this.set).length > 0 ? { set: this.set } : {}),
      ...(this.unset.length > 0 ? { unset: this.unset } : {}),
      ...(this.operations.length > 0 ? { operations: this.operations } : {}),
    };
  }
}
