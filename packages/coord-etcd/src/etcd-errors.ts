/** Translation of etcd3 and gRPC errors into Consortium's taxonomy; nothing above this adapter sees etcd3 errors. */
import {
  BackendError,
  BackendUnavailableError,
  CancelledError,
  LeaseLostError,
  isConsortiumError,
} from '@consortium/core';
import { ClientClosedError, EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';

/**
 * Describes an etcd failure during `what` as a Consortium error: an unknown or expired lease is `LeaseLostError`,
 * network and server trouble is the retryable `BackendUnavailableError`, anything else `BackendError`.
 */
export function translateEtcdError(error: unknown, what: string): Error {
  if (isConsortiumError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof EtcdLeaseInvalidError) {
    return new LeaseLostError(`${what}: the lease is expired or revoked`, { cause: error });
  }
  if (error instanceof ClientClosedError) {
    return new BackendUnavailableError(`${what}: the etcd client is closed`, { cause: error });
  }
  if (error instanceof Error && isRecoverableError(error)) {
    return new BackendUnavailableError(`${what}: etcd is unavailable (${message})`, { cause: error });
  }
  return new BackendError(`${what}: etcd failed (${message})`, { cause: error });
}

/** True for errors after which retrying the same etcd operation may succeed. */
export function isRetryable(error: unknown): boolean {
  return isConsortiumError(error) && error.retryable && !(error instanceof CancelledError);
}

/** An internal wait cut short by a signal; public methods turn it into the right `CancelledError`. */
export class WaitAborted extends Error {
  constructor() {
    super('Wait aborted');
    this.name = 'WaitAborted';
  }
}
