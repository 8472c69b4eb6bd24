/**
 * One decision, written once for apply and explain: a provider's `decide(run)` reads its backend, answers every
 * update on `run.out`, and performs writes through `run.operation`, which skips them in explain and records each as a
 * timed operation either way. `decisionProvider` turns such a function into a `NodeProvider`.
 */
import type {
  ExplainOutcome,
  Logger,
  NodeProvider,
  Operation,
  ProviderContext,
  ProviderTask,
} from '@consortium/core';
import { OutcomeBuilder } from '@consortium/core';

/** What an operation says about itself: its action, its target and, once it has run, a detail. */
export interface OperationSpec {
  readonly action: string;
  readonly target: string;
}

/** One run of a provider's decision for one task: the outcome it builds and whether writes are skipped. */
export class TaskRun {
  /** The answer being built. */
  readonly out = new OutcomeBuilder();

  /** Starts a run of `task`; in explain (`explain` true) no operation's effect runs. */
  constructor(
    readonly task: ProviderTask,
    readonly context: ProviderContext,
    readonly explain: boolean,
  ) {}

  /** The signal that aborts on cancel or lease loss. */
  get signal(): AbortSignal {
    return this.context.signal;
  }

  /** The provider's logger. */
  get logger(): Logger {
    return this.context.logger;
  }

  /**
   * Runs a backend write (skipped in explain) and records it as an operation with its duration; `detail` may depend
   * on the write's result (undefined in explain). The effect starts synchronously, so a check-and-set made in its
   * first synchronous part cannot interleave with another task's. Rethrows what the effect throws.
   */
  async operation<T>(
    spec: OperationSpec,
    detail: string | ((result: T | undefined) => string),
    effect: () => Promise<T>,
  ): Promise<T | undefined> {
    const started = this.context.now();
    const result = this.explain ? undefined : await effect();
    const operation: Operation = {
      action: spec.action,
      target: spec.target,
      detail: typeof detail === 'string' ? detail : detail(result),
      durationMs: this.context.now() - started,
    };
    this.out.operations.push(operation);
    return result;
  }

  /** The outcome built so far; `later` is kept only in explain. */
  outcome(): ExplainOutcome {
    return this.out.build(this.explain);
  }
}

/**
 * A provider whose `apply` runs `decide` and whose `explain` runs it with writes skipped; `declaration` holds the
 * rest (name, kind, claims, watches, observe, and anything the plugin adds, such as `close`).
 */
export function decisionProvider<Declaration extends Omit<NodeProvider, 'apply' | 'explain'>>(
  declaration: Declaration,
  decide: (run: TaskRun) => Promise<void>,
): NoInfer<Declaration> & Pick<NodeProvider, 'apply' | 'explain'> {
  const run = async (
    task: ProviderTask,
    context: ProviderContext,
    explain: boolean,
  ): Promise<ExplainOutcome> => {
    const taskRun = new TaskRun(task, context, explain);
    await decide(taskRun);
    return taskRun.outcome();
  };
  return {
    ...declaration,
    apply: (task, context) => run(task, context, false),
    explain: (task, context) => run(task, context, true),
  };
}
