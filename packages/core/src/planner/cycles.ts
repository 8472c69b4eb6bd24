/**
 * Proposal-cycle detection: a state reached through proposals is fingerprinted (node and pending updates), and
 * reaching a fingerprint again means the providers' proposals go round in circles.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../json.js';
import { parsePath } from '../paths.js';
import type { KindSchema } from '../schema.js';
import type { JobFailure, PlannerState } from './types.js';

function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

/** The fingerprint of a state: its attributes and its pending updates, order-independent. */
export function fingerprintOf(state: PlannerState): string {
  return hash(
    canonicalJson(state.attrs) +
      state.pending
        .map((p) => `${p.provider}|${p.update.op}|${p.update.path}|${canonicalJson(p.update.value)}`)
        .sort()
        .join('\n'),
  );
}

/**
 * Records the state's fingerprint, or returns the `PROPOSAL_CYCLE` failure when the state was reached before
 * (naming the providers that proposed since then, and the owners of what they proposed).
 */
export function checkCycle(
  schema: KindSchema,
  state: PlannerState,
  round: number,
): { readonly state: PlannerState } | { readonly failure: JobFailure } {
  const fingerprint = fingerprintOf(state);
  const seenAt = state.fingerprints[fingerprint];
  if (seenAt === undefined) {
    return { state: { ...state, fingerprints: { ...state.fingerprints, [fingerprint]: round } } };
  }
  const involved = new Set<string>();
  for (const r of state.rounds.filter((r) => r.round > seenAt)) {
    for (const t of r.tasks) {
      for (const proposal of t.outcome?.propose ?? []) {
        involved.add(t.provider);
        involved.add(schema.authorityOf(parsePath(proposal.path)));
      }
    }
  }
  const names = [...involved].sort();
  return {
    failure: {
      code: 'PROPOSAL_CYCLE',
      message: `proposal cycle between ${names.join(' and ')}: round ${round} returned to the state of round ${seenAt}`,
      providers: names,
    },
  };
}
