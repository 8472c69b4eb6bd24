/**
 * The filters that indexes serve use them: SQLite's `EXPLAIN QUERY PLAN` of the page query `listNodes` runs, for
 * an equality, `has` on a set list, a CIDR query and a hop along a reference. Each must find its candidates in the
 * value index and look the nodes up by key, never scan the nodes of the kind (a cost in proportion to the
 * inventory), and must not sort (the lookups come in name order). So must the listing of one owner's
 * reservations that every address allocation makes: never a walk over every reservation of the subnet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Filter } from '@consortium/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPV4_IN_FUNCTION, ipv4In } from './filter-sql.js';
import { listNodesQuery, openSqliteStore, OWNER_RESERVATIONS_SQL } from './sqlite-store.js';

let dir: string;
let db: Database.Database;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-plan-'));
  const path = join(dir, 'plan.db');
  const store = await openSqliteStore({ path });
  await store.insertNode('subnet', 's1', { present: true, vlan: 100 }, 0);
  for (let i = 0; i < 200; i++) {
    await store.insertNode(
      'host',
      `h${i}`,
      {
        present: true,
        subnet: 's1',
        subcluster: `sc${i % 20}`,
        puppet_roles: ['base', `r${i}`],
        interfaces: [{ name: 'eth0', ip: `10.0.${Math.floor(i / 100)}.${i % 100}` }],
      },
      0,
    );
    await store.reserve('ipam/s1', `10.0.${Math.floor(i / 100)}.${i % 100}`, `host/h${i}`);
  }
  await store.close();
  db = new Database(path);
  db.function(IPV4_IN_FUNCTION, { deterministic: true }, ipv4In);
});

afterAll(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The plan of the first page of hosts matching `filter`, one line per step. */
function plan(filter: Filter): string[] {
  const query = listNodesQuery('host', { filter }, 101);
  return db
    .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${query.sql}`)
    .all(...query.params)
    .map((row) => row.detail);
}

const byKey = 'SEARCH n USING INDEX sqlite_autoindex_nodes_1 (kind=? AND name=?)';
const valueLookup = /^SEARCH v\d+ USING PRIMARY KEY \(kind=\? AND path=\? AND value=\?\)$/;
const valueRange = /^SEARCH v\d+ USING PRIMARY KEY \(kind=\? AND path=\? AND value>\? AND value<\?\)$/;

describe.each([
  ['without statistics (as the store runs)', false],
  ['with statistics (ANALYZE)', true],
])('the SQLite query plans of indexed filters, %s', (_, analyze) => {
  beforeAll(() => {
    if (analyze) db.exec('ANALYZE');
  });

  const cases: readonly [string, Filter, RegExp][] = [
    ['an equality', { op: 'eq', field: 'subcluster', value: 'sc1' }, valueLookup],
    ['has on a set list', { op: 'has', field: 'puppet_roles', value: 'r1' }, valueLookup],
    ['in', { op: 'in', field: 'subcluster', values: ['sc1', 'sc2'] }, valueLookup],
    ['a CIDR query', { op: 'cidr', field: 'interfaces.ip', cidr: '10.0.1.0/28' }, valueRange],
    [
      'a reference hop',
      { op: 'ref', field: 'subnet', kind: 'subnet', filter: { op: 'eq', field: 'vlan', value: 100 } },
      valueLookup,
    ],
  ];
  it.each(cases)(
    '%s looks its candidates up in the value index and the nodes by key',
    (_name, filter, lookup) => {
      const steps = plan(filter);
      expect(steps).toContain(byKey);
      expect(steps.some((step) => lookup.test(step))).toBe(true);
      expect(steps.filter((step) => /^SCAN (n|v\d+|r\d+)\b/.test(step))).toEqual([]);
      expect(steps.filter((step) => step.includes('TEMP B-TREE'))).toEqual([]);
    },
  );

  it('the hop finds the referenced nodes through the index too', () => {
    const steps = plan({
      op: 'ref',
      field: 'subnet',
      kind: 'subnet',
      filter: { op: 'eq', field: 'vlan', value: 100 },
    });
    // The subnets with vlan 100 come from the value index, then by key: the hop never walks the subnets either.
    expect(
      steps.filter((step) =>
        /^SEARCH r\d+ USING INDEX sqlite_autoindex_nodes_1 \(kind=\? AND name=\?\)$/.test(step),
      ),
    ).toHaveLength(1);
    expect(steps.filter((step) => valueLookup.test(step)).length).toBeGreaterThanOrEqual(2);
  });

  it("one owner's reservations come from the owner index in key order, not a walk of the namespace", () => {
    const steps = db
      .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${OWNER_RESERVATIONS_SQL}`)
      .all('ipam/s1', 'host/h7')
      .map((row) => row.detail);
    expect(steps).toEqual([
      'SEARCH reservations USING COVERING INDEX reservations_by_owner (namespace=? AND owner=?)',
    ]);
  });

  it('a filter without an index walks the nodes (the plan tells them apart)', () => {
    expect(plan({ op: 'glob', field: 'subcluster', pattern: 'sc1*' })).toContain(
      'SEARCH n USING INDEX sqlite_autoindex_nodes_1 (kind=?)',
    );
  });
});
