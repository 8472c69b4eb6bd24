/**
 * Bulk export and import of the ArangoDB store (`consortium store copy`): every record exactly as stored, read
 * through cursors a batch at a time, written in one stream transaction (all or nothing).
 */
import type { Database } from 'arangojs';
import { aql } from 'arangojs/aql';
import type { AqlQuery } from 'arangojs/aql';
import type { DocumentCollection } from 'arangojs/collections';
import { ConflictError } from '@consortium/core';
import type {
  AuditEntry,
  JobEvent,
  JobRecord,
  Reservation,
  StoreRecord,
  StoreRecordType,
  StoredNode,
  TokenRecord,
} from '@consortium/core';
import { isUniqueViolation } from './errors.js';
import { Collections } from './migrations.js';
import type { ReferenceMap } from './references.js';
import { digest, edgeDocuments, nodeKey } from './references.js';

/** Records per batch of `exportRecords`. */
export const EXPORT_BATCH = 500;

const COLLECTION_OF: Readonly<Record<StoreRecordType, string>> = {
  node: Collections.nodes,
  job: Collections.jobs,
  event: Collections.events,
  audit: Collections.audit,
  token: Collections.tokens,
  reservation: Collections.reservations,
};

/** The export query of each record type, in a stable order that its indexes serve where they can. */
function exportQuery(db: Database, type: StoreRecordType): AqlQuery {
  const c = db.collection(COLLECTION_OF[type]);
  switch (type) {
    case 'node':
      return aql`FOR d IN ${c} SORT d.kind, d.name
        RETURN { kind: d.kind, name: d.name, attrs: d.attrs, revision: d.revision, observed: d.observed,
          createdAt: d.createdAt, updatedAt: d.updatedAt }`;
    case 'job':
      return aql`FOR d IN ${c} SORT d.createdAt, d.id RETURN d.record`;
    case 'event':
      return aql`FOR d IN ${c} SORT d.jobId, d.seq RETURN { jobId: d.jobId, seq: d.seq, at: d.at, type: d.type, data: d.data }`;
    case 'audit':
      return aql`FOR d IN ${c} SORT d.at, d._key
        RETURN { at: d.at, actor: d.actor, action: d.action, kind: d.kind, name: d.name, jobId: d.jobId,
          before: d.before, after: d.after }`;
    case 'token':
      return aql`FOR d IN ${c} SORT d.id
        RETURN { id: d.id, hash: d.hash, role: d.role, description: d.description, createdAt: d.createdAt,
          expiresAt: d.expiresAt }`;
    case 'reservation':
      return aql`FOR d IN ${c} SORT d.namespace, d.key RETURN { namespace: d.namespace, key: d.key, owner: d.owner }`;
  }
}

type Exported = Record<string, unknown>;

function toRecord(type: StoreRecordType, doc: Exported): StoreRecord {
  switch (type) {
    case 'node':
      return { type, node: doc as unknown as StoredNode };
    case 'job':
      return { type, job: doc as unknown as JobRecord };
    case 'event':
      return { type, event: doc as unknown as JobEvent };
    case 'audit': {
      const { jobId, ...rest } = doc;
      const entry = rest as unknown as AuditEntry;
      return { type, entry: typeof jobId === 'string' ? { ...entry, jobId } : entry };
    }
    case 'token': {
      const { description, expiresAt, ...rest } = doc;
      const token = rest as unknown as TokenRecord;
      return {
        type,
        token: {
          ...token,
          ...(typeof description === 'string' ? { description } : {}),
          ...(typeof expiresAt === 'number' ? { expiresAt } : {}),
        },
      };
    }
    case 'reservation': {
      const reservation: Reservation = { key: String(doc['key']), owner: String(doc['owner']) };
      return { type, namespace: String(doc['namespace']), reservation };
    }
  }
}

/** Every record of one type, a batch at a time; ArangoDB errors pass through untranslated. */
export async function* exportArangoRecords(
  db: Database,
  type: StoreRecordType,
): AsyncIterable<readonly StoreRecord[]> {
  const query = exportQuery(db, type) as AqlQuery<Exported>;
  const cursor = await db.query<Exported>(query, { batchSize: EXPORT_BATCH });
  for await (const batch of cursor.batches) {
    if (batch.length > 0) yield batch.map((doc) => toRecord(type, doc));
  }
}

/** How many records of each type the store holds. */
export async function countArangoRecords(db: Database): Promise<Record<StoreRecordType, number>> {
  const counts = {} as Record<StoreRecordType, number>;
  for (const [type, name] of Object.entries(COLLECTION_OF) as [StoreRecordType, string][]) {
    counts[type] = (await db.collection(name).count()).count;
  }
  return counts;
}

/** A record as the document(s) it is stored as, and the words that name it in a conflict. */
interface Planned {
  readonly collection: string;
  readonly doc: Record<string, unknown>;
  readonly what: string;
  /** How to find an existing document that would clash with this one. */
  readonly clash?: AqlQuery;
}

function plan(db: Database, record: StoreRecord): Planned {
  const c = (type: StoreRecordType): DocumentCollection => db.collection(COLLECTION_OF[type]);
  switch (record.type) {
    case 'node': {
      const { node } = record;
      const key = nodeKey(node.kind, node.name);
      return {
        collection: Collections.nodes,
        doc: { _key: key, ...node },
        what: `Node ${node.kind}/${node.name}`,
        clash: aql`FOR d IN ${c('node')} FILTER d._key == ${key} RETURN 1`,
      };
    }
    case 'job': {
      const { job } = record;
      const key = digest(job.id);
      const doc = {
        _key: key,
        id: job.id,
        kind: job.kind,
        name: job.name,
        state: job.state,
        createdAt: job.createdAt,
        updatedAt: job.updatedAt,
        record: job,
      };
      return {
        collection: Collections.jobs,
        doc,
        what: `Job ${job.id}`,
        clash: aql`FOR d IN ${c('job')} FILTER d._key == ${key} RETURN 1`,
      };
    }
    case 'event': {
      const { event } = record;
      return {
        collection: Collections.events,
        doc: { ...event },
        what: `Event ${event.seq} of job ${event.jobId}`,
        clash: aql`FOR d IN ${c('event')} FILTER d.jobId == ${event.jobId} AND d.seq == ${event.seq} RETURN 1`,
      };
    }
    case 'audit': {
      const { entry } = record;
      return {
        collection: Collections.audit,
        doc: { ...entry, jobId: entry.jobId ?? null },
        what: 'An audit entry',
      };
    }
    case 'token': {
      const { token } = record;
      const key = digest(token.id);
      const doc = {
        _key: key,
        ...token,
        description: token.description ?? null,
        expiresAt: token.expiresAt ?? null,
      };
      return {
        collection: Collections.tokens,
        doc,
        what: `Token ${token.id}`,
        clash: aql`FOR d IN ${c('token')} FILTER d._key == ${key} OR d.hash == ${token.hash} RETURN 1`,
      };
    }
    case 'reservation': {
      const { namespace, reservation } = record;
      return {
        collection: Collections.reservations,
        doc: { namespace, key: reservation.key, owner: reservation.owner },
        what: `The reservation of ${reservation.key} in ${namespace}`,
        clash: aql`FOR d IN ${c('reservation')} FILTER d.namespace == ${namespace} AND d.key == ${reservation.key} RETURN 1`,
      };
    }
  }
}

/**
 * Writes records as they are, all or nothing, in one stream transaction, with the `refs` edges of the nodes;
 * throws `ConflictError` naming a record that exists. ArangoDB errors pass through untranslated.
 */
export async function importArangoRecords(
  db: Database,
  records: readonly StoreRecord[],
  references: ReferenceMap,
): Promise<void> {
  if (records.length === 0) return;
  const planned = records.map((record) => plan(db, record));
  const write = [...new Set([...planned.map((p) => p.collection), Collections.refs])];
  const trx = await db.beginTransaction({ write });
  try {
    // Consecutive records of one collection go in one query, in their order (audit ties keep theirs).
    for (let start = 0; start < planned.length;) {
      const collection = (planned[start] as Planned).collection;
      let end = start;
      while (end < planned.length && (planned[end] as Planned).collection === collection) end += 1;
      const docs = planned.slice(start, end).map((p) => p.doc);
      const target = db.collection(collection);
      await trx.step(() => db.query(aql`FOR d IN ${docs} INSERT d INTO ${target}`));
      if (collection === Collections.nodes) {
        const refs = db.collection(Collections.refs);
        const edges = docs.flatMap((doc) =>
          edgeDocuments(
            Collections.nodes,
            String(doc['kind']),
            `${Collections.nodes}/${String(doc['_key'])}`,
            doc['attrs'] as StoredNode['attrs'],
            references,
          ),
        );
        if (edges.length > 0) await trx.step(() => db.query(aql`FOR e IN ${edges} INSERT e INTO ${refs}`));
      }
      start = end;
    }
  } catch (error) {
    await trx.abort().catch(() => undefined);
    if (isUniqueViolation(error)) throw await conflictOf(db, planned, error);
    throw error;
  }
  await trx.commit();
}

/** The first record that clashes with a stored one, as a `ConflictError`; looked up after the abort. */
async function conflictOf(db: Database, planned: readonly Planned[], error: unknown): Promise<ConflictError> {
  for (const p of planned) {
    if (p.clash === undefined) continue;
    const found = await (await db.query(p.clash)).all();
    if (found.length > 0)
      return new ConflictError(`${p.what} already exists in the target store`, { cause: error });
  }
  // Two records of the import itself clash (the same node twice).
  return new ConflictError('Two of the imported records are the same record', { cause: error });
}
