/**
 * Opt-in timing of each job's trip through the processes: with `CONSORTIUM_TRACE_JOBS=1` in its environment, a
 * web, master or worker writes one JSON line per stage a job passes (`{"trace":<job>,"stage":...,"at":<ms>}`) to
 * stderr. `at` is wall-clock milliseconds with sub-millisecond precision, so the lines of processes on one host
 * line up; bench/cluster.ts sums them per hop. Off, a stage costs one boolean test.
 */

/** Whether job stages are traced in this process. */
export const TRACING = process.env['CONSORTIUM_TRACE_JOBS'] === '1';

/** Wall-clock milliseconds with sub-millisecond precision: the `at` of a stage. */
export function traceNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Records that job `jobId` reached `stage` at `at` (default now); a no-op unless `TRACING`. */
export function traceJob(jobId: string, stage: string, at?: number): void {
  if (!TRACING) return;
  process.stderr.write(`${JSON.stringify({ trace: jobId, stage, at: at ?? traceNow() })}\n`);
}
