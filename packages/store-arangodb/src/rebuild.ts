/**
 * Keeps the `refs` edges in step with the declared references: the map the edges were derived with is recorded in
 * `meta/references`; when a process opens the store with a different map (a plugin added or dropped an `x-ref`
 * field), the edges of the kinds concerned are derived again from the nodes' attributes.
 */
import type { Database } from 'arangojs';
import type { Attrs } from '@consortium/core';
import { aql } from 'arangojs/aql';
import { Collections, retryRaces } from './migrations.js';
import type { ReferenceMap } from './references.js';
import { canonicalReferences, edgeDocuments } from './references.js';

/** The `_key` of the document in `meta` that records the references the edges were derived with. */
export const REFERENCES_DOCUMENT = 'references';

const BATCH = 500;

/**
 * Rebuilds the edges of every kind whose references differ from the recorded ones and records `references`;
 * returns the kinds it rebuilt. Not one transaction: run it (it runs when the store opens) while no process with
 * the other map writes nodes; a process with the same map may write meanwhile, since its edges agree.
 */
export async function rebuildReferences(db: Database, references: ReferenceMap): Promise<string[]> {
  const meta = db.collection(Collections.meta);
  const nodes = db.collection(Collections.nodes);
  const refs = db.collection(Collections.refs);
  const [recorded] = await (
    await db.query<{ map: ReferenceMap } | null>(
      aql`FOR m IN ${meta} FILTER m._key == ${REFERENCES_DOCUMENT} RETURN { map: m.map }`,
    )
  ).all();
  const before: ReferenceMap = recorded?.map ?? {};
  if (
    recorded !== undefined &&
    recorded !== null &&
    canonicalReferences(before) === canonicalReferences(references)
  ) {
    return [];
  }
  const kinds = [...new Set([...Object.keys(before), ...Object.keys(references)])].filter(
    (kind) =>
      canonicalReferences({ [kind]: before[kind] ?? {} }) !==
      canonicalReferences({ [kind]: references[kind] ?? {} }),
  );
  for (const kind of kinds.sort()) {
    await db.query(aql`FOR e IN ${refs} FILTER e.fromKind == ${kind} REMOVE e IN ${refs}`);
    if (references[kind] === undefined) continue;
    const cursor = await db.query<{ id: string; attrs: Attrs }>(
      aql`FOR n IN ${nodes} FILTER n.kind == ${kind} RETURN { id: n._id, attrs: n.attrs }`,
      { batchSize: BATCH },
    );
    for await (const batch of cursor.batches) {
      const edges = batch.flatMap((node) =>
        edgeDocuments(Collections.nodes, kind, node.id, node.attrs, references),
      );
      if (edges.length > 0) await db.query(aql`FOR e IN ${edges} INSERT e INTO ${refs}`);
    }
  }
  const doc = { _key: REFERENCES_DOCUMENT, map: references, at: Date.now() };
  // Several processes opening at once all write the same map; a conflict between them is retried.
  await retryRaces(() => db.query(aql`INSERT ${doc} INTO ${meta} OPTIONS { overwriteMode: "replace" }`));
  return kinds;
}
