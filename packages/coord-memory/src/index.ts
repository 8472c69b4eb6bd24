/** @consortium/coord-memory: the in-process coordinator for one process (`consortium dev`) and for tests. */
export { MemoryCluster } from './memory-cluster.js';
export * from './memory-coordinator.js';
