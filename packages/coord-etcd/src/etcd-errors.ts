/** Translation of etcd3 and gRPC errors into Consortium's taxonomy; nothing above this adapter sees etcd3 errors. */
import {
  BackendError,
  BackendUnavailableError,
  CancelledError,
  LeaseLostError,
  isConsortiumError,
} from '@consortium/core';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';

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

/** What gRPC last saw on a connection it could not establish (`No connection established. Last error: ...`). */
function lastConnectionError(message: string): string | undefined {
  const last = /Last error: ([\s\S]*?)\s*(?:\(\d{4}-\d\d-\d\dT[^)]*\))?\.? Resolution note/.exec(
    message,
  )?.[1];
  return last === undefined || last === 'null'
    ? undefined
    : last
        .replace(/^Error: /, '')
        .replace(/\s+/g, ' ')
        .trim();
}

/** What etcd said, without gRPC's status prefix (`3 INVALID_ARGUMENT: etcdserver: ...`). */
function serverReason(message: string): string {
  return (/etcdserver: (.*)$/s.exec(message)?.[1] ?? message).replace(/\s+/g, ' ').trim();
}

/** Where a refused client was refused, for `refusalOf`. */
export interface RefusalContext {
  /** The endpoint(s) named in the message. */
  readonly endpoint: string;
  /** The etcd user this client authenticates as, if any. */
  readonly username?: string;
  /** The key prefix the refused read was under. */
  readonly prefix: string;
}

/**
 * Why etcd refuses this client for good, as one line naming the endpoint, or undefined when `error` is not such a
 * refusal: a TLS handshake either side rejects (a CA that did not sign etcd's certificate; no client certificate,
 * or one signed by a CA etcd does not trust), rejected credentials, a user without access to the prefix. A down or
 * unreachable etcd is not a refusal: it may come back. Looks through translated errors to their cause.
 */
export function refusalOf(error: unknown, context: RefusalContext): string | undefined {
  const original = isConsortiumError(error) && error.cause !== undefined ? error.cause : error;
  const { endpoint, username, prefix } = context;
  const user = username === undefined ? 'this client' : `user ${username}`;
  if (original instanceof EtcdAuthenticationFailedError) {
    return `etcd at ${endpoint} refused ${user}: ${serverReason(original.message)}`;
  }
  if (original instanceof EtcdPermissionDeniedError) {
    return `etcd at ${endpoint} denies ${user} access to ${prefix}: ${serverReason(original.message)}`;
  }
  if (!(original instanceof GRPCUnavailableError)) return undefined;
  const last = lastConnectionError(original.message);
  if (last === undefined) return undefined;
  // OpenSSL's own errors (`...:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:...`): the alert is etcd's.
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(last)?.[1]?.trim();
  if (openssl !== undefined) {
    if (/alert/.test(openssl)) {
      return `etcd at ${endpoint} refused the TLS handshake: ${openssl} (it takes only client certificates signed by a CA it trusts)`;
    }
    return `TLS handshake with etcd at ${endpoint} failed: ${openssl} (does it serve TLS on this port?)`;
  }
  if (/certificate|self[- ]signed|altnames|issuer/i.test(last)) {
    return `TLS handshake with etcd at ${endpoint} failed: ${last} (its certificate is not signed by the CA this process trusts, or does not name this address)`;
  }
  return undefined;
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
