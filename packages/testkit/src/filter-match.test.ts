/** The in-memory filter of hooks answers every store contract filter case as the stores do. */
import { describe, expect, it } from 'vitest';
import { matchesFilter } from '@consortium/core';
import type { MatchedNode } from '@consortium/core';
import { FILTER_ALL_HOSTS, FILTER_CASES, FILTER_HOSTS, FILTER_OTHER_NODES } from './filter-cases.js';

const others = new Map(FILTER_OTHER_NODES.map(([kind, name, attrs]) => [`${kind}/${name}`, { name, attrs }]));
const reference = (kind: string, name: string): Promise<MatchedNode | undefined> => {
  const host = kind === 'host' ? FILTER_HOSTS[name] : undefined;
  return Promise.resolve(host === undefined ? others.get(`${kind}/${name}`) : { name, attrs: host });
};

describe('matchesFilter', () => {
  it.each(FILTER_CASES)('%s', async (_title, filter, expected) => {
    const found: string[] = [];
    for (const name of FILTER_ALL_HOSTS) {
      const attrs = FILTER_HOSTS[name];
      if (attrs !== undefined && (await matchesFilter({ name, attrs }, filter, reference))) found.push(name);
    }
    expect(found).toEqual([...expected].sort());
  });
});
