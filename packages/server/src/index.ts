/** @consortium/server: the roles, the HTTP API and the composition of a `consortium` process. */
export * from './config.js';
export * from './master.js';
export * from './metrics.js';
export * from './observer.js';
export * from './plugins.js';
export * from './process.js';
export * from './protocol.js';
export * from './runnable.js';
export * from './tokens.js';
export * from './web/app.js';
export * from './web/server.js';
export * from './worker.js';
