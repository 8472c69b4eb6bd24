/** @consortium/testkit: contract suites for the ports, harnesses and helpers for tests. */
export * from './store-contract.js';
export * from './filter-cases.js';
export * from './coordinator-contract.js';
export * from './etcd-harness.js';
export * from './postgres-harness.js';
export * from './provider-contract.js';
export * from './helpers.js';
export * from './certs.js';
export * from './netns.js';
export * from './powerdns-harness.js';
export * from './provisioning-fixture.js';
export * from './host-fixture.js';
