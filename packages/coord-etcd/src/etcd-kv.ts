/**
 * A thin layer over the etcd3 client: string keys under the coordinator's prefix, transactions built from small
 * helpers, streams for keepalive and watch, and every error translated. etcd3's automatic retries and circuit
 * breaker are turned off: a retried put can apply twice and a single endpoint's breaker stalls every call for
 * seconds after a restart (DESIGN.md §5), so the callers retry where it is safe, with guarded transactions.
 */
import { LeaseLostError } from '@consortium/core';
import { CompareResult, CompareTarget, Etcd3 } from 'etcd3';
import type {
  ICompare,
  IDuplexStream,
  IKeyValue,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  IOptions,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  IResponseHeader,
  ITxnResponse,
  IWatchRequest,
  IWatchResponse,
} from 'etcd3';
import { translateEtcdError } from './etcd-errors.js';
import { WatchHub } from './watch-hub.js';

/** A key-value pair as read, with its key relative to the prefix. */
export interface KeyValue {
  readonly key: string;
  readonly value: Buffer;
  readonly createRevision: string;
  readonly modRevision: string;
  readonly lease: string;
}

/** The result of a range read. */
export interface RangeResult {
  readonly revision: bigint;
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

/** Options of a range read; `end` is exclusive and `prefix` reads every key under `key`. */
export interface RangeOptions {
  readonly prefix?: boolean;
  readonly end?: string;
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly revision?: bigint;
  readonly minModRevision?: bigint;
  /**
   * Served by the member asked from what it has applied, without a round of consensus: cheaper, possibly a little
   * behind. Only for reads whose result a guarded transaction checks again (a hint, never a decision).
   */
  readonly serializable?: boolean;
}

/** The result of a transaction. */
export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: bigint;
  /** Results of the range operations that ran, in order. */
  readonly ranges: readonly RangeResult[];
}

type FaultPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** The signal of calls made without one: shared, since making one per call showed in profiles. */
const neverAborted = new AbortController().signal;

/** A fault-handling policy that calls straight through: no retry, no circuit breaker. */
const passThrough: FaultPolicy = {
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- cockatiel's IPolicy type requires it; never read
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? neverAborted }),
};

/** Options of `EtcdKv`. */
export interface EtcdKvOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  /** Deadline of unary calls; streams have none. */
  readonly requestTimeoutMs: number;
  /** TLS: the CA certificates to verify etcd with, and this member's client certificate and key (PEM). */
  readonly credentials?: {
    readonly rootCertificate: Buffer;
    readonly certChain?: Buffer;
    readonly privateKey?: Buffer;
  };
  /** etcd's own authentication: a user and its password, exchanged for a token. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** The end of the range of keys starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0xff;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * With `CONSORTIUM_TRACE_ETCD=1` in its environment, a process counts its etcd calls by what they do and writes the
 * running totals to stderr four times a second as one JSON line (`{"etcdCalls":{"txn Acking task":12,...}}`);
 * bench/cluster.ts turns them into calls per job. Off, a call costs one boolean test.
 */
let countingCalls = process.env['CONSORTIUM_TRACE_ETCD'] === '1';
const callCounts: Record<string, number> = {};
if (countingCalls) {
  setInterval(() => {
    process.stderr.write(`${JSON.stringify({ etcdCalls: callCounts })}\n`);
  }, 250).unref();
}

/** Starts counting this process's etcd calls without writing them out (tests read them with `etcdCallCounts`). */
export function countEtcdCalls(): void {
  countingCalls = true;
}

/** The etcd calls this process made since counting started, by what they do (`range q/tasks/ready`: 12). */
export function etcdCallCounts(): Readonly<Record<string, number>> {
  return { ...callCounts };
}

/** Counts one call under `what` without the ids in it (`Acking task j-1/r1/a on queue "tasks"` → `Acking task`). */
function countCall(kind: string, what: string): void {
  if (!countingCalls) return;
  const words =
    kind === 'txn'
      ? what
          .split(' ')
          .slice(0, 3)
          .filter((word) => !/[/"\d(]/.test(word))
      : [what];
  const name = `${kind} ${words.join(' ')}`;
  callCounts[name] = (callCounts[name] ?? 0) + 1;
}

/** The etcd connection of one coordinator. */
export class EtcdKv {
  readonly #client: Etcd3;
  readonly #prefix: Buffer;
  readonly #prefixLength: number;
  #closed = false;

  constructor(options: EtcdKvOptions) {
    const { requestTimeoutMs } = options;
    this.#prefix = Buffer.from(options.prefix, 'utf8');
    this.#prefixLength = this.#prefix.length;
    this.#client = new Etcd3({
      hosts: [...options.endpoints],
      ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
      // The token exchange gets the deadline of unary calls from defaultCallOptions.
      ...(options.auth === undefined ? {} : { auth: { ...options.auth } }),
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
      grpcOptions: {
        // Detects a silent connection in ~15 s; etcd refuses pings more often than every 5 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      },
      faultHandling: { host: () => passThrough, global: passThrough },
    });
  }

  /** The absolute key of relative `key`. */
  key(key: string): Buffer {
    return Buffer.concat([this.#prefix, Buffer.from(key, 'utf8')]);
  }

  /** The relative key of absolute `key`. */
  relative(key: Buffer): string {
    return key.subarray(this.#prefixLength).toString('utf8');
  }

  /** A range request for `key` (a single key, a prefix or `[key, end)`). */
  rangeRequest(key: string, options: RangeOptions = {}): IRangeRequest {
    const start = this.key(key);
    const request: IRangeRequest = { key: start };
    if (options.prefix === true) request.range_end = prefixEnd(start);
    else if (options.end !== undefined) request.range_end = this.key(options.end);
    if (options.limit !== undefined) request.limit = options.limit;
    if (options.keysOnly === true) request.keys_only = true;
    if (options.countOnly === true) request.count_only = true;
    if (options.revision !== undefined) request.revision = String(options.revision);
    if (options.minModRevision !== undefined) request.min_mod_revision = String(options.minModRevision);
    if (options.serializable === true) request.serializable = true;
    return request;
  }

  /** Reads a key or a range; throws translated errors. */
  async range(key: string, options: RangeOptions = {}): Promise<RangeResult> {
    try {
      countCall('range', key.split('/').slice(0, 3).join('/'));
      const response = await this.#client.kv.range(this.rangeRequest(key, options));
      return this.#rangeResult(response.header, response.kvs, response.more, response.count);
    } catch (error) {
      throw translateEtcdError(error, `Reading ${key}`);
    }
  }

  /** Runs a transaction; `what` names it in errors. */
  async txn(
    what: string,
    compare: readonly ICompare[],
    success: readonly IRequestOp[],
    failure: readonly IRequestOp[] = [],
  ): Promise<TxnResult> {
    let response: ITxnResponse;
    try {
      countCall('txn', what);
      response = await this.#client.kv.txn({
        compare: [...compare],
        success: [...success],
        failure: [...failure],
      });
    } catch (error) {
      throw translateEtcdError(error, what);
    }
    // With oneofs, a response op carries only the field of its kind.
    const ranges = response.responses.flatMap((op) => {
      const range: IRangeResponse | undefined = 'response_range' in op ? op.response_range : undefined;
      return range === undefined ? [] : [this.#rangeResult(range.header, range.kvs, range.more, range.count)];
    });
    return { succeeded: response.succeeded, revision: BigInt(response.header.revision), ranges };
  }

  /** Compares the create revision of `key` (0 when absent). */
  createIs(key: string, revision: bigint | string | number): ICompare {
    return {
      key: this.key(key),
      target: CompareTarget.Create,
      result: CompareResult.Equal,
      create_revision: String(revision),
    };
  }

  /** Compares the mod revision of `key` (0 when absent). */
  modIs(key: string, revision: bigint | string | number): ICompare {
    return {
      key: this.key(key),
      target: CompareTarget.Mod,
      result: CompareResult.Equal,
      mod_revision: String(revision),
    };
  }

  /** Compares the lease `key` is attached to (0 when absent or on none). */
  leaseIs(key: string, leaseId: string): ICompare {
    return { key: this.key(key), target: CompareTarget.Lease, result: CompareResult.Equal, lease: leaseId };
  }

  /** True when `key` exists. */
  exists(key: string): ICompare {
    return { key: this.key(key), target: CompareTarget.Version, result: CompareResult.Greater, version: 0 };
  }

  /** True when `key` does not exist. */
  absent(key: string): ICompare {
    return { key: this.key(key), target: CompareTarget.Version, result: CompareResult.Equal, version: 0 };
  }

  /** Puts `value` at `key`, on `lease` when given. */
  put(key: string, value: string | Buffer, lease?: string): IRequestOp {
    const request = {
      key: this.key(key),
      value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    };
    return { request_put: lease === undefined ? request : { ...request, lease } };
  }

  /** Deletes `key`. */
  delete(key: string): IRequestOp {
    return { request_delete_range: { key: this.key(key) } };
  }

  /** Reads inside a transaction. */
  read(key: string, options: RangeOptions = {}): IRequestOp {
    return { request_range: this.rangeRequest(key, options) };
  }

  /** Grants a lease of `ttlSeconds`; returns its id (decimal). */
  async grant(ttlSeconds: number): Promise<string> {
    try {
      const response = await this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds });
      return response.ID;
    } catch (error) {
      throw translateEtcdError(error, 'Granting a lease');
    }
  }

  /** Revokes a lease, deleting its keys; an already gone lease is not an error. */
  async revoke(leaseId: string, timeoutMs?: number): Promise<void> {
    try {
      await this.#client.leaseClient.leaseRevoke(
        { ID: leaseId },
        timeoutMs === undefined ? undefined : { deadline: Date.now() + timeoutMs },
      );
    } catch (error) {
      const translated = translateEtcdError(error, `Revoking lease ${leaseId}`);
      if (translated instanceof LeaseLostError) return;
      throw translated;
    }
  }

  /** Opens a lease keepalive stream. */
  async keepAliveStream(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    try {
      return await this.#client.leaseClient.leaseKeepAlive();
    } catch (error) {
      throw translateEtcdError(error, 'Opening a keepalive stream');
    }
  }

  /** The watch stream all watches of this connection share. */
  readonly watchHub = new WatchHub(() => this.watchStream());

  /** Opens a watch stream (the hub's; watches go through `watchHub`). */
  async watchStream(): Promise<IDuplexStream<IWatchRequest, IWatchResponse>> {
    try {
      countCall('watch', '');
      return await this.#client.watchClient.watch();
    } catch (error) {
      throw translateEtcdError(error, 'Opening a watch stream');
    }
  }

  /** Converts a raw key-value. */
  keyValue(kv: IKeyValue): KeyValue {
    return {
      key: this.relative(kv.key),
      value: kv.value,
      createRevision: kv.create_revision,
      modRevision: kv.mod_revision,
      lease: kv.lease,
    };
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes every connection; calls in flight fail. */
  close(): void {
    this.#closed = true;
    this.watchHub.close();
    this.#client.close();
  }

  #rangeResult(
    header: IResponseHeader,
    kvs: readonly IKeyValue[],
    more: boolean,
    count: string,
  ): RangeResult {
    return {
      revision: BigInt(header.revision),
      kvs: kvs.map((kv) => this.keyValue(kv)),
      more,
      count: Number(count),
    };
  }
}

/** Ends a gRPC stream without etcd3 treating it as a failed host: end() first makes it unwritable. */
export function closeStream(stream: { end(): void; cancel(): void }): void {
  try {
    stream.end();
  } catch {
    // already ended
  }
  try {
    stream.cancel();
  } catch {
    // already cancelled
  }
}
