/**
 * The compiler's semantics on the store contract's filter cases, checked here where no ArangoDB runs: each filter is
 * compiled to AQL and evaluated by `aql-subset.test-support.ts`, a model of the AQL subset the compiler writes,
 * over the contract's hosts, both by looking names up and along `refs` edges derived from declared references.
 * This checks the compiler's logic against ArangoDB's documented semantics, not ArangoDB itself; the hosts and
 * cases are the contract's own (`@consortium/testkit`'s filter cases).
 */
import { Database } from 'arangojs';
import { describe, expect, it } from 'vitest';
import { FILTER_CASES, FILTER_HOSTS, FILTER_OTHER_NODES } from '@consortium/testkit';
import type { Filter } from '@consortium/core';
import { compileAqlExpression } from './aql-subset.test-support.js';
import { compileFilter } from './filter-aql.js';
import type { ReferenceMap } from './references.js';
import { edgeDocuments, nodeKey } from './references.js';

const db = new Database({ url: 'http://127.0.0.1:9' });
const nodes = db.collection('nodes');
const refs = db.collection('refs');
const REFERENCES: ReferenceMap = { host: { subnet: 'subnet', peers: 'host' } };

const documents = [
  ...Object.entries(FILTER_HOSTS).map(([name, attrs]) => ['host', name, attrs] as const),
  ...FILTER_OTHER_NODES,
].map(([kind, name, attrs]) => ({ _id: `nodes/${nodeKey(kind, name)}`, kind, name, attrs }));
const edges = documents.flatMap((doc) => edgeDocuments('nodes', doc.kind, doc._id, doc.attrs, REFERENCES));

function find(filter: Filter, references: ReferenceMap | undefined, kind = 'host'): string[] {
  const compiled = compileFilter(filter, kind, {
    nodes,
    refs,
    ...(references === undefined ? {} : { references }),
  });
  const expr = compileAqlExpression(compiled.query, {
    bindVars: compiled.bindVars,
    collections: { nodes: documents as any, refs: edges as any },
  });
  return documents
    .filter((doc) => doc.kind === kind && expr(new Map([['n', doc as any]])) === true)
    .map((doc) => doc.name)
    .sort();
}

describe('the compiled AQL on the contract filter cases (a model of AQL)', () => {
  it('uses edges for the declared references', () => {
    expect(edges.map((e) => `${e.field}:${e.toName}`).sort()).toEqual([
      'peers:db-01',
      'peers:web-01',
      'subnet:net-a',
      'subnet:net-a',
      'subnet:net-b',
      'subnet:net-gone',
    ]);
  });

  it.each(FILTER_CASES)('%s, looking names up', (_title, filter, expected) => {
    expect(find(filter, undefined)).toEqual(expected);
  });

  it.each(FILTER_CASES)('%s, along edges', (_title, filter, expected) => {
    expect(find(filter, REFERENCES)).toEqual(expected);
  });

  it('filters within the kind only', () => {
    expect(find({ op: 'eq', field: 'datacenter', value: 'pek1' }, undefined, 'vm')).toEqual(['web-01']);
  });
});
