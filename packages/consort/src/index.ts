/** @consortium/consort: the shell client's pieces, for tests and embedding. The binary is `consort` (main.ts). */
export * from './client.js';
export * from './config.js';
export * from './errors.js';
export * from './render.js';
export * from './schema.js';
export * from './watch.js';
