/**
 * @consortium/test-cobbler-server: a Cobbler 3.3.7-compatible XML-RPC server for tests (DESIGN.md §9), with the
 * upstream behaviour, faults and quirks the Cobbler plugin depends on, and injectable faults.
 */
export type { CobblerModelOptions, SystemDict, SystemSeed } from './cobbler-model.js';
export {
  COBBLER_VERSION,
  CobblerModel,
  DEFAULT_TOKEN_TTL_MS,
  OBJECT_CACHE_TIMEOUT_MS,
} from './cobbler-model.js';
export { cx, PYTHON_FAULT_CODE, PythonError, pythonRepr } from './python-error.js';
export type {
  CobblerCall,
  CobblerEndpoint,
  CobblerServerOptions,
  CobblerTestServer,
  InjectedFault,
} from './server.js';
export { COBBLER_API_PATH, COBBLERD_RPC_PATHS, startCobblerServer } from './server.js';
