/** @consortium/coord-etcd: the etcd coordinator for cluster mode (DESIGN.md §5). */
export { EtcdCoordinator } from './etcd-coordinator.js';
export type { EtcdCoordinatorOptions, EtcdTls } from './etcd-coordinator.js';
