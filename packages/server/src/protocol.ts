/**
 * The protocol between the roles: queue names, notification topics, lock keys and the messages that travel
 * through the coordinator. Every message has an encoder (to JSON, no casts) and a decoder that validates what it
 * reads, so that a malformed or foreign payload is refused at the edge with a message that says where it is wrong.
 */
import type {
  ApplyOutcome,
  ErrorCode,
  ErrorInfo,
  JsonObject,
  JsonValue,
  ProposedUpdate,
  ProviderTask,
  TaskResult,
  UpdateOp,
  UpdateRequest,
} from '@consortium/core';
import { InternalError, httpStatusByCode, isJsonObject } from '@consortium/core';

/** Queue of job ids the web hands to the master. */
export const JOB_QUEUE = 'jobs';
/** Queue of provider tasks the master hands to workers. */
export const TASK_QUEUE = 'tasks';
/** Queue of task results the workers hand back. */
export const RESULT_QUEUE = 'results';
/** Every queue of the protocol, for metrics. */
export const QUEUES: readonly string[] = [JOB_QUEUE, TASK_QUEUE, RESULT_QUEUE];

/** The prefix of every job topic. */
export const JOB_TOPIC_PREFIX = 'jobs/';

/** The notification topic of one job: new events, cancel requests. */
export function jobTopic(jobId: string): string {
  return `${JOB_TOPIC_PREFIX}${jobId}`;
}

/** The job id of a job topic. */
export function jobOfTopic(topic: string): string {
  return topic.slice(JOB_TOPIC_PREFIX.length);
}

/** The lock key of a node: two jobs on one node never run at the same time. */
export function nodeLockKey(kind: string, name: string): string {
  return `node/${kind}/${name}`;
}

/**
 * The lock key of a node's intake: the checks that admit a change (the node exists or not, its revision, no change
 * in progress) and the job write happen under it, so that two web processes never admit conflicting changes.
 */
export function intakeLockKey(kind: string, name: string): string {
  return `intake/${kind}/${name}`;
}

/** What a task queue entry carries. */
export interface TaskMessage {
  readonly task: ProviderTask;
  readonly fencingToken: string;
}

/** What a result queue entry carries. */
export interface ResultMessage {
  readonly jobId: string;
  readonly result: TaskResult;
}

/** What is published on a job topic: a new event, or a request to cancel. */
export type JobNotice =
  { readonly kind: 'event'; readonly seq: number; readonly type: string } | { readonly kind: 'cancel' };

// ---- encoding ------------------------------------------------------------------------------------------------

/**
 * Copies a value as JSON, refusing what JSON cannot carry (functions, `undefined` in arrays, non-finite numbers);
 * `undefined` object members are dropped, as `JSON.stringify` does. Throws `InternalError`: only a bug sends one.
 */
export function toJson(value: unknown, at = '$'): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InternalError(`${at} is not a finite number`);
    return value;
  }
  if (Array.isArray(value)) return value.map((item: unknown, i) => toJson(item, `${at}[${i}]`));
  if (typeof value === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) out[key] = toJson(item, `${at}.${key}`);
    }
    return out;
  }
  throw new InternalError(`${at} is a ${typeof value}, which JSON cannot carry`);
}

function toJsonObject(value: object, at: string): JsonObject {
  const json = toJson(value, at);
  if (!isJsonObject(json)) throw new InternalError(`${at} must be an object`);
  return json;
}

/** A task message as a queue payload. */
export function encodeTaskMessage(message: TaskMessage): JsonValue {
  return toJson(message, 'task message');
}

/** A result message as a queue payload. */
export function encodeResultMessage(message: ResultMessage): JsonValue {
  return toJson(message, 'result message');
}

/** An error description as a JSON object (for events and messages). */
export function errorInfoJson(info: ErrorInfo): JsonObject {
  return toJsonObject(info, 'error');
}

/** A provider's outcome as a JSON object (for events). */
export function outcomeJson(outcome: ApplyOutcome): JsonObject {
  return toJsonObject(outcome, 'outcome');
}

/** A job notice as a topic message. */
export function encodeJobNotice(notice: JobNotice): JsonValue {
  return notice.kind === 'cancel' ? { cancel: true } : { seq: notice.seq, type: notice.type };
}

// ---- decoding ------------------------------------------------------------------------------------------------

/** A validating reader of one JSON value; `at` names where it sits, for the error message. */
type Decoder<T> = (value: JsonValue | undefined, at: string) => T;

function malformed(at: string, expected: string): InternalError {
  return new InternalError(`malformed message: ${at} must be ${expected}`);
}

const str: Decoder<string> = (value, at) => {
  if (typeof value !== 'string') throw malformed(at, 'a string');
  return value;
};

const num: Decoder<number> = (value, at) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(at, 'a number');
  return value;
};

const bool: Decoder<boolean> = (value, at) => {
  if (typeof value !== 'boolean') throw malformed(at, 'true or false');
  return value;
};

const json: Decoder<JsonValue> = (value, at) => {
  if (value === undefined) throw malformed(at, 'present');
  return value;
};

const obj: Decoder<JsonObject> = (value, at) => {
  if (!isJsonObject(value)) throw malformed(at, 'an object');
  return value;
};

function list<T>(item: Decoder<T>): Decoder<T[]> {
  return (value, at) => {
    if (!Array.isArray(value)) throw malformed(at, 'an array');
    return value.map((entry: JsonValue, i) => item(entry, `${at}[${i}]`));
  };
}

function oneOf<T extends string>(choices: readonly T[]): Decoder<T> {
  return (value, at) => {
    const found = choices.find((choice) => choice === value);
    if (found === undefined) throw malformed(at, `one of ${choices.join(', ')}`);
    return found;
  };
}

/** Reads an optional member: absent stays absent (so that `exactOptionalPropertyTypes` holds). */
function opt<K extends string, T>(
  source: JsonObject,
  key: K,
  decode: Decoder<T>,
  at: string,
): { [P in K]?: T } {
  const value = source[key];
  if (value === undefined) return {};
  const out: { [P in K]?: T } = {};
  out[key] = decode(value, `${at}.${key}`);
  return out;
}

const UPDATE_OPS: readonly UpdateOp[] = ['set', 'unset', 'add', 'remove', 'merge', 'sync'];

const ERROR_CODES = Object.keys(httpStatusByCode).filter(isErrorCode);

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(httpStatusByCode, code);
}

const updateRequest: Decoder<UpdateRequest & { readonly reason?: string }> = (value, at) => {
  const o = obj(value, at);
  return {
    path: str(o['path'], `${at}.path`),
    op: oneOf(UPDATE_OPS)(o['op'], `${at}.op`),
    ...opt(o, 'value', json, at),
    ...opt(o, 'reason', str, at),
  };
};

const proposedUpdate: Decoder<ProposedUpdate> = (value, at) => {
  const o = obj(value, at);
  return {
    ...updateRequest(o, at),
    id: str(o['id'], `${at}.id`),
    origin: str(o['origin'], `${at}.origin`),
  };
};

const providerTask: Decoder<ProviderTask> = (value, at) => {
  const o = obj(value, at);
  return {
    id: str(o['id'], `${at}.id`),
    jobId: str(o['jobId'], `${at}.jobId`),
    round: num(o['round'], `${at}.round`),
    attempt: num(o['attempt'], `${at}.attempt`),
    provider: str(o['provider'], `${at}.provider`),
    kind: str(o['kind'], `${at}.kind`),
    name: str(o['name'], `${at}.name`),
    node: obj(o['node'], `${at}.node`),
    updates: list(proposedUpdate)(o['updates'], `${at}.updates`),
    ...opt(o, 'later', stringRecord, at),
  };
};

const stringRecord: Decoder<Record<string, string>> = (value, at) => {
  const o = obj(value, at);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(o)) out[key] = str(item, `${at}.${key}`);
  return out;
};

const errorInfo: Decoder<ErrorInfo> = (value, at) => {
  const o = obj(value, at);
  return {
    code: oneOf(ERROR_CODES)(o['code'], `${at}.code`),
    message: str(o['message'], `${at}.message`),
    retryable: bool(o['retryable'], `${at}.retryable`),
    ...opt(o, 'details', obj, at),
  };
};

const idReason: Decoder<{ id: string; reason: string }> = (value, at) => {
  const o = obj(value, at);
  return { id: str(o['id'], `${at}.id`), reason: str(o['reason'], `${at}.reason`) };
};

const deferral: Decoder<{ id: string; reason: string; waitFor?: string[] }> = (value, at) => ({
  ...idReason(value, at),
  ...opt(obj(value, at), 'waitFor', list(str), at),
});

const operation: Decoder<NonNullable<ApplyOutcome['operations']>[number]> = (value, at) => {
  const o = obj(value, at);
  return {
    action: str(o['action'], `${at}.action`),
    target: str(o['target'], `${at}.target`),
    ...opt(o, 'detail', str, at),
    ...opt(o, 'durationMs', num, at),
  };
};

const outcome: Decoder<ApplyOutcome & { readonly later?: readonly string[] }> = (value, at) => {
  const o = obj(value, at);
  return {
    ...opt(o, 'accepted', list(str), at),
    ...opt(o, 'deferred', list(deferral), at),
    ...opt(o, 'rejected', list(idReason), at),
    ...opt(o, 'set', obj, at),
    ...opt(o, 'unset', list(str), at),
    ...opt(o, 'propose', list(updateRequest), at),
    ...opt(o, 'operations', list(operation), at),
    ...opt(o, 'later', list(str), at),
  };
};

const taskResult: Decoder<TaskResult> = (value, at) => {
  const o = obj(value, at);
  const base = {
    taskId: str(o['taskId'], `${at}.taskId`),
    attempt: num(o['attempt'], `${at}.attempt`),
    durationMs: num(o['durationMs'], `${at}.durationMs`),
  };
  if (o['error'] !== undefined) return { ...base, error: errorInfo(o['error'], `${at}.error`) };
  return { ...base, outcome: outcome(o['outcome'], `${at}.outcome`) };
};

/** Reads a task queue payload; throws `InternalError` naming what is malformed. */
export function decodeTaskMessage(payload: JsonValue): TaskMessage {
  const o = obj(payload, 'task message');
  return {
    task: providerTask(o['task'], 'task message.task'),
    fencingToken: str(o['fencingToken'], 'task message.fencingToken'),
  };
}

/** Reads a result queue payload; throws `InternalError` naming what is malformed. */
export function decodeResultMessage(payload: JsonValue): ResultMessage {
  const o = obj(payload, 'result message');
  return {
    jobId: str(o['jobId'], 'result message.jobId'),
    result: taskResult(o['result'], 'result message.result'),
  };
}

/** Reads a job queue payload (a job id); throws `InternalError` when it is not one. */
export function decodeJobId(payload: JsonValue): string {
  const id = str(payload, 'job queue entry');
  if (id === '') throw malformed('job queue entry', 'a job id');
  return id;
}

/** Reads a job topic message; undefined for one this version does not know (ignored, not fatal). */
export function decodeJobNotice(message: JsonValue): JobNotice | undefined {
  if (!isJsonObject(message)) return undefined;
  if (message['cancel'] === true) return { kind: 'cancel' };
  const { seq, type } = message;
  if (typeof seq === 'number' && typeof type === 'string') return { kind: 'event', seq, type };
  return undefined;
}
