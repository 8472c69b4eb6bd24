/** @consortium/core/testing: fixtures shared by tests and benchmarks; not for production code. */
export * from './provisioning-fixture.js';
