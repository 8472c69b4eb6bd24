/** @consortium/store-arangodb: the store on ArangoDB (arangojs, AQL with bind variables only, an edge per reference). */
export * from './arangodb-store.js';
export * from './errors.js';
export * from './filter-aql.js';
export * from './migrations.js';
export * from './rebuild.js';
export * from './references.js';
export * from './transfer.js';
