/**
 * The powerdns provider against a real PowerDNS (testkit's harness: Debian's pdns-server with SQLite): records made,
 * moved and removed, answered over DNS (by the harness's in-process resolver; the end-to-end test asks with dig);
 * what it leaves alone; drift seen by observe; PowerDNS's refusals and outages as the errors an operator reads.
 * Writes are counted as SOA serial bumps: PowerDNS bumps a zone's serial on every PATCH, so an unchanged sum of
 * serials means nothing was written.
 */
import type {
  ApplyOutcome,
  Attrs,
  NodeProvider,
  ProposedUpdate,
  ProviderContext,
  ProviderTask,
  Store,
} from '@consortium/plugin-api';
import {
  BackendError,
  BackendUnavailableError,
  ConsortiumError,
  InputError,
  silentLogger,
} from '@consortium/plugin-api';
import { openSqliteStore } from '@consortium/store-sqlite';
import type { PowerDnsHarness } from '@consortium/testkit';
import { startPowerDns } from '@consortium/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PowerDnsConfig } from './index.js';
import { plugin, resolveSettings } from './index.js';

let pdns: PowerDnsHarness;
let store: Store;

beforeAll(async () => {
  pdns = await startPowerDns({
    zones: ['example.com', 'pek1.example.com', '2.1.10.in-addr.arpa', '3.10.in-addr.arpa'],
  });
  store = await openSqliteStore({ path: ':memory:' });
  await store.insertNode('subnet', 'pek1-web', { present: true, cidr: '10.1.2.0/24' }, 0);
  await store.insertNode('subnet', 'pek1-big', { present: true, cidr: '10.3.0.0/16' }, 0);
}, 60_000);

afterAll(async () => {
  await store.close();
  await pdns.stop();
});

function provider(config: Partial<PowerDnsConfig> = {}, zone: string | null = 'example.com'): NodeProvider {
  const [made] = plugin.providers(
    {
      url: pdns.apiUrl,
      apiKey: pdns.apiKey,
      ...(zone === null ? {} : { forwardZone: zone }),
      ttl: 60,
      ...config,
    },
    { logger: silentLogger, store, now: () => Date.now() },
  );
  if (made === undefined) throw new Error('powerdns has no provider');
  return made;
}

const context: ProviderContext = {
  logger: silentLogger,
  signal: new AbortController().signal,
  fencingToken: '1',
  now: () => Date.now(),
};

let jobs = 0;
function task(name: string, node: Attrs, updates: readonly Partial<ProposedUpdate>[] = [{}]): ProviderTask {
  const jobId = `job-${String(++jobs)}`;
  return {
    id: `${jobId}/r2/powerdns`,
    jobId,
    round: 2,
    attempt: 1,
    provider: 'powerdns',
    kind: 'host',
    name,
    node,
    updates: updates.map((u, i): ProposedUpdate => ({
      id: `${jobId}-u${String(i + 1)}`,
      path: 'interfaces',
      op: 'sync',
      origin: 'ipam',
      ...u,
    })),
  };
}

const host = (ip: string | readonly string[], extra: Attrs = {}): Attrs => ({
  present: true,
  interfaces: (typeof ip === 'string' ? [ip] : ip).map((address, i) => ({
    name: `eth${String(i)}`,
    ip: address,
  })),
  ...extra,
});

/** The node once the provider's reports are merged, as the master would store it. */
function stored(node: Attrs, outcome: ApplyOutcome): Attrs {
  const next: Record<string, unknown> = { ...node, ...(outcome.set ?? {}) };
  for (const path of outcome.unset ?? []) delete next[path];
  return next as Attrs;
}

/** The sum of every zone's SOA serial: it grows with every PATCH PowerDNS takes. */
async function writes(): Promise<number> {
  const zones = (await pdns.api('GET', '/zones')).body as { serial: number }[];
  return zones.reduce((sum, zone) => sum + zone.serial, 0);
}

/** The node as a delete task carries it: without `present`. */
function withoutPresent(node: Attrs): Attrs {
  return Object.fromEntries(Object.entries(node).filter(([key]) => key !== 'present'));
}

async function failure(promise: Promise<unknown>): Promise<ConsortiumError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConsortiumError);
  return error as ConsortiumError;
}

describe('records', () => {
  it('makes an A record in the forward zone and a PTR in the reverse zone of the subnet, answered over DNS', async () => {
    const dns = provider();
    const t = task('web-01', host('10.1.2.10'));
    const outcome = await dns.apply(t, context);
    expect(outcome).toEqual({
      accepted: [`${t.jobId}-u1`],
      set: {
        fqdn: 'web-01.example.com',
        dns_records: ['10.2.1.10.in-addr.arpa PTR web-01.example.com', 'web-01.example.com A 10.1.2.10'],
      },
      operations: [
        expect.objectContaining({
          action: 'patch-zone',
          target: 'zone/2.1.10.in-addr.arpa',
          detail: '10.2.1.10.in-addr.arpa PTR web-01.example.com',
        }),
        expect.objectContaining({
          action: 'patch-zone',
          target: 'zone/example.com',
          detail: 'web-01.example.com A 10.1.2.10',
        }),
      ],
    });
    expect(await pdns.query('web-01.example.com')).toEqual(['10.1.2.10']);
    expect(await pdns.query('10.2.1.10.in-addr.arpa', 'PTR')).toEqual(['web-01.example.com']);

    // The same task again, and once the master stored the report: nothing is written.
    const before = await writes();
    expect((await dns.apply(t, context)).operations).toBeUndefined();
    const settled = await dns.apply(task('web-01', stored(t.node, outcome)), context);
    expect(settled).toEqual({ accepted: [expect.any(String)] });
    expect(await writes()).toBe(before);
  });

  it('one A record per interface address, one PTR each; a /16 subnet has its reverse zone at /16', async () => {
    const outcome = await provider().apply(task('web-02', host(['10.1.2.20', '10.3.7.20'])), context);
    expect(outcome.set?.['dns_records']).toEqual([
      '20.2.1.10.in-addr.arpa PTR web-02.example.com',
      '20.7.3.10.in-addr.arpa PTR web-02.example.com',
      'web-02.example.com A 10.1.2.20',
      'web-02.example.com A 10.3.7.20',
    ]);
    expect((outcome.operations ?? []).map((o) => o.target)).toEqual([
      'zone/2.1.10.in-addr.arpa',
      'zone/3.10.in-addr.arpa',
      'zone/example.com',
    ]);
    expect((await pdns.query('web-02.example.com')).sort()).toEqual(['10.1.2.20', '10.3.7.20']);
    expect(await pdns.query('20.7.3.10.in-addr.arpa', 'PTR')).toEqual(['web-02.example.com']);
  });

  it('a changed address moves both records; a changed hostname moves the name', async () => {
    const dns = provider();
    const first = task('web-03', host('10.1.2.30'));
    const made = stored(first.node, await dns.apply(first, context));
    const moved = task('web-03', { ...made, interfaces: [{ name: 'eth0', ip: '10.1.2.31' }] });
    const outcome = await dns.apply(moved, context);
    expect(outcome.set).toEqual({
      dns_records: ['31.2.1.10.in-addr.arpa PTR web-03.example.com', 'web-03.example.com A 10.1.2.31'],
    });
    expect(outcome.operations?.map((o) => o.detail)).toEqual([
      '31.2.1.10.in-addr.arpa PTR web-03.example.com; 30.2.1.10.in-addr.arpa PTR (removed)',
      'web-03.example.com A 10.1.2.31',
    ]);
    expect(await pdns.query('web-03.example.com')).toEqual(['10.1.2.31']);
    expect(await pdns.query('31.2.1.10.in-addr.arpa', 'PTR')).toEqual(['web-03.example.com']);
    expect(await pdns.query('30.2.1.10.in-addr.arpa', 'PTR')).toEqual([]);

    const renamed = task('web-03', { ...stored(moved.node, outcome), hostname: 'www-03' }, [
      { path: 'hostname' },
    ]);
    const again = await dns.apply(renamed, context);
    expect(again.set).toEqual({
      fqdn: 'www-03.example.com',
      dns_records: ['31.2.1.10.in-addr.arpa PTR www-03.example.com', 'www-03.example.com A 10.1.2.31'],
    });
    expect(await pdns.query('www-03.example.com')).toEqual(['10.1.2.31']);
    expect(await pdns.query('web-03.example.com')).toEqual([]);
    expect(await pdns.query('31.2.1.10.in-addr.arpa', 'PTR')).toEqual(['www-03.example.com']);
  });

  it('removes the records on delete; a delete again, or of records already gone, writes nothing', async () => {
    const dns = provider();
    const t = task('web-04', host('10.1.2.40'));
    const made = stored(t.node, await dns.apply(t, context));
    const deleted = withoutPresent(made);
    const removal = task('web-04', deleted, [{ path: 'present', origin: 'user' }]);
    const outcome = await dns.apply(removal, context);
    expect(outcome.accepted).toEqual([`${removal.jobId}-u1`]);
    expect(outcome.unset).toEqual(['fqdn', 'dns_records']);
    expect(await pdns.query('web-04.example.com')).toEqual([]);
    expect(await pdns.query('40.2.1.10.in-addr.arpa', 'PTR')).toEqual([]);
    const before = await writes();
    expect((await dns.apply(removal, context)).operations).toBeUndefined();
    expect(await writes()).toBe(before);
    expect(await dns.observe?.({ kind: 'host', name: 'web-04' }, context)).toBeNull();
  });

  it('leaves alone a PTR someone pointed elsewhere; the name is the host’s and goes whole', async () => {
    const dns = provider();
    const t = task('web-05', host('10.1.2.50'));
    const made = stored(t.node, await dns.apply(t, context));
    await pdns.api('PATCH', '/zones/2.1.10.in-addr.arpa.', {
      rrsets: [
        {
          name: '50.2.1.10.in-addr.arpa.',
          type: 'PTR',
          ttl: 60,
          changetype: 'REPLACE',
          records: [{ content: 'db-01.example.com.', disabled: false }],
        },
      ],
    });
    await pdns.api('PATCH', '/zones/example.com.', {
      rrsets: [
        {
          name: 'web-05.example.com.',
          type: 'A',
          ttl: 60,
          changetype: 'REPLACE',
          records: [
            { content: '10.1.2.50', disabled: false },
            { content: '10.9.9.9', disabled: false },
          ],
        },
      ],
    });
    const deleted = withoutPresent(made);
    await dns.apply(task('web-05', deleted, [{ path: 'present' }]), context);
    expect(await pdns.query('50.2.1.10.in-addr.arpa', 'PTR')).toEqual(['db-01.example.com']);
    expect(await pdns.query('web-05.example.com')).toEqual([]);
  });

  it('observes what PowerDNS holds, so a record edited behind its back shows as drift', async () => {
    const dns = provider();
    const t = task('web-06', host('10.1.2.60'));
    const made = stored(t.node, await dns.apply(t, context));
    await store.insertNode('host', 'web-06', made, Date.now());
    expect(await dns.observe?.({ kind: 'host', name: 'web-06' }, context)).toEqual({
      fqdn: 'web-06.example.com',
      dns_records: made['dns_records'],
    });
    await pdns.api('PATCH', '/zones/example.com.', {
      rrsets: [
        {
          name: 'web-06.example.com.',
          type: 'A',
          ttl: 60,
          changetype: 'REPLACE',
          records: [{ content: '10.1.2.99', disabled: false }],
        },
      ],
    });
    expect(await dns.observe?.({ kind: 'host', name: 'web-06' }, context)).toEqual({
      fqdn: 'web-06.example.com',
      dns_records: ['60.2.1.10.in-addr.arpa PTR web-06.example.com', 'web-06.example.com A 10.1.2.99'],
    });
    // The next task puts it back.
    await dns.apply(task('web-06', made), context);
    expect(await pdns.query('web-06.example.com')).toEqual(['10.1.2.60']);
  });

  it('explain reads and writes nothing, naming the zones it would change', async () => {
    const before = await writes();
    const explained = await provider().explain(task('web-07', host('10.1.2.70')), context);
    expect(explained.operations?.map((o) => `${o.action} ${o.target}`)).toEqual([
      'patch-zone zone/2.1.10.in-addr.arpa',
      'patch-zone zone/example.com',
    ]);
    expect(explained.set?.['fqdn']).toBe('web-07.example.com');
    expect(await writes()).toBe(before);
    expect(await pdns.query('web-07.example.com')).toEqual([]);
  });

  it('a host without an address has no records and reports none', async () => {
    const outcome = await provider().apply(task('web-08', { present: true, hostname: 'web-08' }), context);
    expect(outcome).toEqual({ accepted: [expect.any(String)] });
  });
});

describe('names and zones', () => {
  it('uses the forward zone of the host’s datacenter, waits for the datacenter, refuses one without a zone', async () => {
    const dns = provider({ forwardZones: { pek1: 'pek1.example.com.' } }, null);
    expect(dns.watches).toEqual(['hostname', 'interfaces', 'datacenter']);
    const placed = await dns.apply(task('web-10', host('10.1.2.100', { datacenter: 'pek1' })), context);
    expect(placed.set?.['fqdn']).toBe('web-10.pek1.example.com');
    expect(await pdns.query('web-10.pek1.example.com')).toEqual(['10.1.2.100']);

    const waiting = task('web-11', host('10.1.2.110'));
    expect((await dns.apply(waiting, context)).deferred).toEqual([
      {
        id: `${waiting.jobId}-u1`,
        reason: 'waiting for datacenter: the forward zone is chosen by it (forwardZones)',
        waitFor: ['datacenter'],
      },
    ]);
    const elsewhere = task('web-12', host('10.1.2.120', { datacenter: 'fra1' }));
    expect((await dns.apply(elsewhere, context)).rejected).toEqual([
      {
        id: `${elsewhere.jobId}-u1`,
        reason:
          'no forward zone for datacenter "fra1": add it to forwardZones (or set forwardZone) in the powerdns config',
      },
    ]);
  });

  it('takes a hostname in the zone as it is, a single label inside it, and refuses one outside it', async () => {
    const dns = provider();
    const inside = await dns.apply(
      task('web-13', host('10.1.2.130', { hostname: 'WEB-13.Example.com' })),
      context,
    );
    expect(inside.set?.['fqdn']).toBe('web-13.example.com');
    const outside = task('web-14', host('10.1.2.140', { hostname: 'web-14.example.org' }));
    expect((await dns.apply(outside, context)).rejected).toEqual([
      {
        id: `${outside.jobId}-u1`,
        reason:
          'hostname "web-14.example.org" is not in the forward zone example.com: give a single label or a name ending in .example.com',
      },
    ]);
  });

  it('accepts fqdn stated as it is and refuses any other value, or a path it does not provide', async () => {
    const dns = provider();
    const t = task('web-15', host('10.1.2.150'), [
      { path: 'fqdn', op: 'set', value: 'web-15.example.com', origin: 'user' },
      { path: 'dns_records', op: 'set', value: ['web-15.example.com A 10.9.9.9'], origin: 'user' },
      { path: 'power', op: 'set', value: 'on', origin: 'user' },
    ]);
    const outcome = await dns.apply(t, context);
    expect(outcome.accepted).toEqual([`${t.jobId}-u1`]);
    expect(outcome.rejected).toEqual([
      { id: `${t.jobId}-u3`, reason: 'powerdns does not provide power' },
      {
        id: `${t.jobId}-u2`,
        reason:
          'dns_records follows the host\'s hostname (or name), its forward zone and its interface addresses (now ["150.2.1.10.in-addr.arpa PTR web-15.example.com","web-15.example.com A 10.1.2.150"]); change those instead',
      },
    ]);
    expect(outcome.set).toEqual({
      dns_records: ['150.2.1.10.in-addr.arpa PTR web-15.example.com', 'web-15.example.com A 10.1.2.150'],
    });
  });
});

describe('errors, translated at the edge', () => {
  it('a wrong API key (401) fails with what to check', async () => {
    const error = await failure(
      provider({ apiKey: 'wrong' }).apply(task('web-20', host('10.1.2.200')), context),
    );
    expect(error).toBeInstanceOf(BackendError);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      'PowerDNS refused the API key (401 Unauthorized) when asked to keep the DNS records of web-20; check apiKey (or apiKeyEnv) against api-key in pdns.conf',
    );
  });

  it('a forward zone PowerDNS does not have (404) fails naming it; a missing reverse zone too', async () => {
    const forward = await failure(
      provider({ forwardZone: 'missing.example' }).apply(task('web-21', host('10.1.2.210')), context),
    );
    expect(forward).toBeInstanceOf(BackendError);
    expect(forward.message).toBe(
      'PowerDNS has no zone missing.example (404) to keep the DNS records of web-21; create it (pdnsutil create-zone missing.example) or fix forwardZone/forwardZones in the powerdns config',
    );
    const reverse = await failure(provider().apply(task('web-22', host('10.5.6.7')), context));
    expect(reverse.message).toBe(
      'PowerDNS has no zone 6.5.10.in-addr.arpa (404) to keep the DNS records of web-22; create the reverse zone of the subnet that holds 10.5.6.7 (pdnsutil create-zone 6.5.10.in-addr.arpa)',
    );
  });

  it('a wrong server id is told apart from a missing zone', async () => {
    const error = await failure(
      provider({ serverId: 'nope' }).apply(task('web-23', host('10.1.2.230')), context),
    );
    expect(error.message).toBe(
      `PowerDNS at ${pdns.apiUrl} has no server "nope" (404); is url its webserver with api=yes, and serverId right?`,
    );
  });

  it('records PowerDNS refuses (422) fail with its reason', async () => {
    await pdns.api('PATCH', '/zones/example.com.', {
      rrsets: [
        {
          name: 'web-24.example.com.',
          type: 'CNAME',
          ttl: 60,
          changetype: 'REPLACE',
          records: [{ content: 'elsewhere.example.com.', disabled: false }],
        },
      ],
    });
    const error = await failure(provider().apply(task('web-24', host('10.1.2.240')), context));
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).toBe(
      'PowerDNS refused to change the records of web-24 in zone example.com: RRset web-24.example.com. IN A: Conflicts with pre-existing RRset (422)',
    );
  });

  it('PowerDNS down is retryable, and the same task succeeds once it is back', async () => {
    const dns = provider();
    const t = task('web-25', host('10.1.2.250'));
    await pdns.kill();
    try {
      const error = await failure(dns.apply(t, context));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(
        `cannot reach PowerDNS at ${pdns.apiUrl} to keep the DNS records of web-25: ECONNREFUSED`,
      );
      await expect(dns.observe?.({ kind: 'host', name: 'web-25' }, context)).rejects.toThrow(
        BackendUnavailableError,
      );
    } finally {
      await pdns.restart();
    }
    expect((await dns.apply(t, context)).accepted).toEqual([`${t.jobId}-u1`]);
    expect(await pdns.query('web-25.example.com')).toEqual(['10.1.2.250']);
  }, 30_000);

  it('checks the config: a key or its variable, a zone, a URL', () => {
    const base = { url: pdns.apiUrl, forwardZone: 'example.com' };
    expect(() => resolveSettings(base)).toThrow(
      new InputError('powerdns: give the API key in apiKey or name its environment variable in apiKeyEnv'),
    );
    expect(() => resolveSettings({ ...base, apiKeyEnv: 'PDNS_KEY' }, {})).toThrow(
      'powerdns: the environment variable PDNS_KEY (apiKeyEnv) is not set',
    );
    expect(
      resolveSettings({ ...base, apiKeyEnv: 'PDNS_KEY', url: `${pdns.apiUrl}/api/v1/` }, { PDNS_KEY: 'k' }),
    ).toMatchObject({
      baseUrl: pdns.apiUrl,
      apiKey: 'k',
      serverId: 'localhost',
      ttl: 300,
    });
    expect(() => resolveSettings({ url: pdns.apiUrl, apiKey: 'k' })).toThrow(
      'powerdns: name the forward zone in forwardZone, or one per datacenter in forwardZones',
    );
    expect(() => resolveSettings({ ...base, apiKey: 'k', url: 'ftp://x' })).toThrow(
      'powerdns: url "ftp://x" must start with http:// or https://',
    );
  });
});
