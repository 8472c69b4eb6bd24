/** @consortium/core: the node model, authority, schemas, merge semantics and the transition planner. No I/O. */
export * from './errors.js';
export * from './execute.js';
export * from './json.js';
export * from './merge.js';
export * from './model.js';
export * from './names.js';
export * from './patch.js';
export * from './paths.js';
export * from './planner.js';
export * from './plugin.js';
export * from './provider.js';
export * from './schema.js';
export * from './ports/coordinator.js';
export * from './ports/store.js';
export * from './search.js';
export * from './outcome-builder.js';
export * from './interfaces.js';
