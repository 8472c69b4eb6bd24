/** @consortium/store-sqlite: the embedded store on SQLite (better-sqlite3, WAL, versioned migrations). */
export * from './filter-sql.js';
export * from './migrations.js';
export * from './sqlite-store.js';
