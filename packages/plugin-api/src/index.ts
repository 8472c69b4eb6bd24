/** @consortium/plugin-api: the one package a plugin imports. Types and helpers re-exported from the core. */
export {
  BackendError,
  BackendUnavailableError,
  CancelledError,
  ConflictError,
  InputError,
  NotFoundError,
  TimeoutError,
  ConsortiumError,
  definePlugin,
  isNodeName,
  interfaceFieldOf,
  interfaceOf,
  OutcomeBuilder,
  silentLogger,
  deepEqual,
  isJsonObject,
  parsePath,
  formatPath,
  formatCidr,
  formatIpv4,
  hostAddresses,
  isHostAddress,
  networkContains,
  parseCidr,
  parseIpv4,
  prefixMask,
} from '@consortium/core';
export type {
  ApplyOutcome,
  Attrs,
  AttributeClaim,
  DiscoveredObject,
  ExplainOutcome,
  Ipv4Network,
  JsonObject,
  JsonSchema,
  JsonValue,
  KindDefinition,
  KindInvariant,
  ReferrerInvariant,
  Logger,
  NodeProvider,
  NodeRef,
  Observation,
  Operation,
  PluginDefinition,
  SeedNode,
  PluginServices,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
  ListNodesOptions,
  NodeReader,
  Page,
  PluginStore,
  ReservationStore,
  Store,
  StoredNode,
  UpdateRequest,
} from '@consortium/core';
export type { OperationSpec } from './task-run.js';
export { decisionProvider, TaskRun } from './task-run.js';
export type { HypervisorUsage, VmSize } from './placement.js';
export { describeFree, describeSize, fits, freeOn, hwspecOf, macFor, place } from './placement.js';
export {
  DNS_NAME_PATTERN,
  DNS_RECORD_PATTERN,
  dnsHostClaims,
  HYPERVISOR_KIND,
  hypervisorCapacityClaims,
  IPV4_CIDR_PATTERN,
  IPV4_PATTERN,
  ipv4Schema,
  MAC_PATTERN,
  pxeHostClaims,
  vmHostClaims,
} from './host-attributes.js';
export type { HypervisorCapacitySource } from './hypervisor-capacity.js';
export { capacityOf, hypervisorCapacityProvider } from './hypervisor-capacity.js';
export type { DesiredPxeSystem, PxeBackend, PxeChange, PxeSystemState } from './pxe-provider.js';
export { describePxeSystem, pxeProvider } from './pxe-provider.js';
export type { PlacementWait, VmBackend, VmDefinition, VmFacts } from './vm-provider.js';
export { vmProvider } from './vm-provider.js';
export { fetchBackend, fetchBackendJson } from './http.js';
export type { BackendCall, JsonAnswer } from './http.js';
