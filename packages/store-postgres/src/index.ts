/** @consortium/store-postgres: the cluster store on PostgreSQL (node-postgres, JSONB, advisory-locked migrations). */
export * from './filter-sql.js';
export * from './migrations.js';
export * from './postgres-store.js';
