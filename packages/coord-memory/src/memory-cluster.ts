/** The shared state behind in-memory coordinators: one per cluster, i.e. one per process in `consortium dev`. */
import { ClusterState } from './cluster-state.js';

const states = new WeakMap<MemoryCluster, ClusterState>();

/**
 * One in-memory cluster that `MemoryCoordinator` members join: elections, locks, queues and notifications are
 * shared by all members of the same cluster and by no one else.
 */
export class MemoryCluster {
  /**
   * `firstRevision` is where the cluster's revision counter (and so every fencing token) starts. A process that
   * keeps fenced records across restarts (`consortium dev`) starts it from the clock, so that a restarted process
   * still issues tokens greater than any its earlier runs wrote.
   */
  constructor(options: { readonly firstRevision?: number } = {}) {
    states.set(this, new ClusterState(options.firstRevision ?? 0));
  }

  /** Ids of the members whose sessions are open, in joining order. */
  memberIds(): readonly string[] {
    return clusterState(this).memberIds();
  }

  /**
   * Ends a member's session as if its lease had expired (for tests): its leadership and locks are lost, its claimed
   * tasks become claimable again and its pending and later calls fail with `LeaseLostError`. Throws `NotFoundError`
   * when no open member has the id.
   */
  kill(memberId: string): void {
    clusterState(this).kill(memberId);
  }
}

/** The internal state of a cluster; not exported from the package. */
export function clusterState(cluster: MemoryCluster): ClusterState {
  const state = states.get(cluster);
  if (state === undefined) throw new TypeError('Not a MemoryCluster');
  return state;
}
