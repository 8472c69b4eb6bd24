/**
 * A count of the elementary steps the core's merge and planning code takes (value comparisons, list items copied
 * or scanned), so that tests can assert how work grows with input size without timing anything.
 */

/** Receives counts of elementary steps. */
export interface WorkMeter {
  count(steps: number): void;
}

let active: WorkMeter | undefined;

/** Counts `steps` on the meter installed by `measureWork`, if any; free when none is installed. */
export function countWork(steps: number): void {
  active?.count(steps);
}

/** Runs `fn` with a fresh meter installed and returns the steps it counted along with its result. */
export function measureWork<T>(fn: () => T): { readonly result: T; readonly steps: number } {
  const previous = active;
  let steps = 0;
  active = {
    count: (n) => {
      steps += n;
    },
  };
  try {
    return { result: fn(), steps };
  } finally {
    active = previous;
  }
}
