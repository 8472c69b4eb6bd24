/**
 * Bulk export and import of the SQLite store (`consortium store copy`): every record exactly as stored, read in
 * keyset-ordered batches so that a large store never sits in memory whole, written in one transaction.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type {
  Attrs,
  AuditEntry,
  JobEvent,
  JobRecord,
  JsonObject,
  Role,
  StoreRecord,
  StoreRecordType,
  StoredNode,
} from '@consortium/core';
import { ConflictError, auditRow } from '@consortium/core';
import { nodeValueWriter } from './node-values.js';
import type { NodeValueWriter } from './node-values.js';

/** Records per batch of `exportRecords`. */
export const EXPORT_BATCH = 500;

type Row = Record<string, string | number | null>;

const TABLES: Readonly<Record<StoreRecordType, string>> = {
  node: 'nodes',
  job: 'jobs',
  event: 'job_events',
  audit: 'audit',
  token: 'tokens',
  reservation: 'reservations',
};

function text(row: Row, column: string): string {
  return String(row[column]);
}

function int(row: Row, column: string): number {
  return Number(row[column]);
}

function json(value: string | number | null | undefined): unknown {
  return value === null || value === undefined ? null : JSON.parse(String(value));
}

/** Keyset pages over one table: `keys` order the rows and resume after the last one. */
function* pages(db: BetterSqlite3.Database, table: string, keys: readonly string[]): Generator<Row[]> {
  let after: (string | number | null)[] | undefined;
  const order = keys.join(', ');
  for (;;) {
    const where = after === undefined ? '' : `WHERE (${order}) > (${keys.map(() => '?').join(', ')})`;
    const rows = db
      .prepare<(string | number | null)[], Row>(
        `SELECT * FROM ${table} ${where} ORDER BY ${order} LIMIT ${EXPORT_BATCH}`,
      )
      .all(...(after ?? []));
    if (rows.length === 0) return;
    yield rows;
    const last = rows[rows.length - 1] as Row;
    after = keys.map((key) => last[key] ?? null);
    if (rows.length < EXPORT_BATCH) return;
  }
}

function nodeRecords(db: BetterSqlite3.Database, rows: readonly Row[]): StoreRecord[] {
  const observations = db.prepare<[string, string], Row>(
    'SELECT provider, attrs, at FROM observations WHERE kind = ? AND name = ? ORDER BY provider',
  );
  return rows.map((row) => {
    const observed = Object.fromEntries(
      observations
        .all(text(row, 'kind'), text(row, 'name'))
        .map((obs) => [
          text(obs, 'provider'),
          { attrs: json(obs['attrs']) as Attrs | null, at: int(obs, 'at') },
        ]),
    );
    const node: StoredNode = {
      kind: text(row, 'kind'),
      name: text(row, 'name'),
      attrs: (json(row['attrs']) as Attrs | null) ?? {},
      revision: int(row, 'revision'),
      observed,
      createdAt: int(row, 'created_at'),
      updatedAt: int(row, 'updated_at'),
    };
    return { type: 'node', node };
  });
}

function toRecord(type: StoreRecordType, row: Row): StoreRecord {
  switch (type) {
    case 'node':
      throw new Error('nodes are read with their observations');
    case 'job':
      return { type, job: json(row['record']) as JobRecord };
    case 'event': {
      const event: JobEvent = {
        jobId: text(row, 'job_id'),
        seq: int(row, 'seq'),
        at: int(row, 'at'),
        type: text(row, 'type'),
        data: (json(row['data']) as JsonObject | null) ?? {},
      };
      return { type, event };
    }
    case 'audit': {
      const entry: AuditEntry = {
        at: int(row, 'at'),
        actor: text(row, 'actor'),
        action: text(row, 'action'),
        kind: text(row, 'kind'),
        name: text(row, 'name'),
        ...(row['job_id'] === null ? {} : { jobId: text(row, 'job_id') }),
        before: json(row['before_attrs']) as Attrs | null,
        after: json(row['after_attrs']) as Attrs | null,
      };
      return { type, entry };
    }
    case 'token':
      return {
        type,
        token: {
          id: text(row, 'id'),
          hash: text(row, 'hash'),
          role: text(row, 'role') as Role,
          createdAt: int(row, 'created_at'),
          ...(row['description'] === null ? {} : { description: text(row, 'description') }),
          ...(row['expires_at'] === null ? {} : { expiresAt: int(row, 'expires_at') }),
        },
      };
    case 'reservation':
      return {
        type,
        namespace: text(row, 'namespace'),
        reservation: { key: text(row, 'key'), owner: text(row, 'owner') },
      };
  }
}

const KEYS: Readonly<Record<StoreRecordType, readonly string[]>> = {
  node: ['kind', 'name'],
  job: ['id'],
  event: ['job_id', 'seq'],
  audit: ['id'],
  token: ['id'],
  reservation: ['namespace', 'key'],
};

/** Every record of one type in key order, a batch at a time. */
export function* exportSqliteRecords(
  db: BetterSqlite3.Database,
  type: StoreRecordType,
): Generator<readonly StoreRecord[]> {
  for (const rows of pages(db, TABLES[type], KEYS[type])) {
    yield type === 'node' ? nodeRecords(db, rows) : rows.map((row) => toRecord(type, row));
  }
}

/** Counts the records of every type. */
export function countSqliteRecords(db: BetterSqlite3.Database): Record<StoreRecordType, number> {
  const count = (table: string): number =>
    (db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  return {
    node: count('nodes'),
    job: count('jobs'),
    event: count('job_events'),
    audit: count('audit'),
    token: count('tokens'),
    reservation: count('reservations'),
  };
}

function insert(
  db: BetterSqlite3.Database,
  sql: string,
  params: (string | number | null)[],
  what: string,
): void {
  const result = db.prepare<(string | number | null)[]>(`${sql} ON CONFLICT DO NOTHING`).run(...params);
  if (result.changes === 0) throw new ConflictError(`${what} already exists in the target store`);
}

function importRecord(db: BetterSqlite3.Database, record: StoreRecord, values: NodeValueWriter): void {
  switch (record.type) {
    case 'node': {
      const { node } = record;
      insert(
        db,
        'INSERT INTO nodes (kind, name, attrs, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
        [node.kind, node.name, JSON.stringify(node.attrs), node.revision, node.createdAt, node.updatedAt],
        `Node ${node.kind}/${node.name}`,
      );
      values.write(node.kind, node.name, node.attrs);
      for (const [provider, obs] of Object.entries(node.observed)) {
        insert(
          db,
          'INSERT INTO observations (kind, name, provider, attrs, at) VALUES (?, ?, ?, ?, ?)',
          [node.kind, node.name, provider, obs.attrs === null ? null : JSON.stringify(obs.attrs), obs.at],
          `The observation of ${node.kind}/${node.name} by ${provider}`,
        );
      }
      return;
    }
    case 'job': {
      const { job } = record;
      insert(
        db,
        'INSERT INTO jobs (id, kind, name, state, created_at, updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [job.id, job.kind, job.name, job.state, job.createdAt, job.updatedAt, JSON.stringify(job)],
        `Job ${job.id}`,
      );
      return;
    }
    case 'event': {
      const { event } = record;
      insert(
        db,
        'INSERT INTO job_events (job_id, seq, at, type, data) VALUES (?, ?, ?, ?, ?)',
        [event.jobId, event.seq, event.at, event.type, JSON.stringify(event.data)],
        `Event ${event.seq} of job ${event.jobId}`,
      );
      return;
    }
    case 'audit': {
      const { entry } = record;
      db.prepare<(string | number | null)[]>(
        'INSERT INTO audit (at, actor, action, kind, name, job_id, before_attrs, after_attrs) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(...auditRow(entry));
      return;
    }
    case 'token': {
      const { token } = record;
      insert(
        db,
        'INSERT INTO tokens (id, hash, role, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
        [
          token.id,
          token.hash,
          token.role,
          token.description ?? null,
          token.createdAt,
          token.expiresAt ?? null,
        ],
        `Token ${token.id}`,
      );
      return;
    }
    case 'reservation':
      insert(
        db,
        'INSERT INTO reservations (namespace, key, owner) VALUES (?, ?, ?)',
        [record.namespace, record.reservation.key, record.reservation.owner],
        `The reservation of ${record.reservation.key} in ${record.namespace}`,
      );
      return;
  }
}

/** Writes records as they are, all or nothing; throws `ConflictError` for one that exists. */
export function importSqliteRecords(db: BetterSqlite3.Database, records: readonly StoreRecord[]): void {
  const values = nodeValueWriter(db);
  db.transaction(() => {
    for (const record of records) importRecord(db, record, values);
  }).immediate();
}
