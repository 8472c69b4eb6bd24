/** The real `consort` binary against a real `consortium dev` server. */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { BinaryServer } from '@consortium/server/test-support';
import { spawnBinary, tempDir } from '@consortium/server/test-support';
import { freePort } from '@consortium/testkit';

const CONSORT = fileURLToPath(new URL('../bin/consort.js', import.meta.url));

let server: BinaryServer;
const data = tempDir();
const home = tempDir('consort-home-');

beforeAll(async () => {
  server = await spawnBinary(data.dir);
}, 40_000);
afterAll(() => {
  server.child.kill('SIGTERM');
  data.remove();
  home.remove();
});

function consort(args: string[], env: Record<string, string | undefined> = {}) {
  const result = spawnSync(process.execPath, [CONSORT, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env['PATH'],
      HOME: home.dir,
      XDG_CONFIG_HOME: join(home.dir, 'config'),
      XDG_CACHE_HOME: join(home.dir, 'cache'),
      CONSORT_URL: server.api.url,
      CONSORT_TOKEN: server.api.token,
      ...env,
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `consort` with these arguments, not blocking the test process; resolves to its stdout. */
function consortAsync(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CONSORT, ...args],
      { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'], HOME: home.dir, ...env } },
      (error, stdout) => {
        if (error !== null) reject(new Error(error.message));
        else resolve(stdout);
      },
    );
  });
}

describe('consort', () => {
  it('runs the DESIGN §2 flow from the shell', () => {
    const subnet = consort(['create', 'subnet', 'pek1-web', 'cidr=10.1.2.0/24', 'gateway=10.1.2.1']);
    expect(subnet.stderr).toBe('');
    expect(subnet.code).toBe(0);
    expect(subnet.stdout).toMatch(/^succeeded in \S+ \(1 round\)$/m);

    const explain = consort([
      'explain',
      'create',
      'host',
      'web-01',
      'hwspec=small',
      'subnet=pek1-web',
      'power=on',
    ]);
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/^ROUND\s+PROVIDER\s+WOULD DO\s+LATER$/m);
    expect(explain.stdout).toContain('plan: succeeded');
    expect(explain.stdout).toMatch(/known later: .*interfaces\[eth0\]\.ip \(ipam\)/);
    expect(consort(['get', 'host', 'web-01']).code).toBe(4);

    const created = consort([
      'create',
      'host',
      'web-01',
      'hwspec=small',
      'datacenter=pek1',
      'subcluster=web',
      'subnet=pek1-web',
      'puppet_roles+=nginx',
      'power=on',
    ]);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/round 1: inventory, ipam, sandbox-vm/);
    expect(created.stdout).toMatch(/round 2\s+sandbox-pxe\s+add-system system\/web-01/);
    expect(created.stdout).toMatch(/round 3\s+sandbox-vm\s+start /);
    expect(created.stdout).toMatch(/^succeeded in \S+ \(3 rounds\)$/m);

    const json = consort(['get', 'host', 'web-01', '-o', 'json', '--authority']);
    expect(json.code).toBe(0);
    const node = JSON.parse(json.stdout);
    expect(node.attrs.power).toBe('on');
    expect(node.attrs.puppet_roles).toEqual(['nginx']);
    expect(node.authority['interfaces[eth0].mac']).toBe('sandbox-vm');

    const set = consort([
      'set',
      'host',
      'web-01',
      'power=off',
      'puppet_roles+=haproxy',
      'description=front',
      '-o',
      'yaml',
    ]);
    expect(set.code).toBe(0);
    const job = parseYaml(set.stdout);
    expect(job.state).toBe('succeeded');
    expect(job.action).toBe('patch');

    const list = consort(['list', 'host', 'datacenter=pek1', '-o', 'yaml']);
    const page = parseYaml(list.stdout);
    expect(page.items.map((n: any) => [n.name, n.attrs.power, [...n.attrs.puppet_roles].sort()])).toEqual([
      ['web-01', 'off', ['haproxy', 'nginx']],
    ]);
    const table = consort(['list', 'host']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+/);
    expect(table.stdout).toMatch(/^web-01\s+/m);

    const found = consort(['search', 'kind=host and puppet_roles has haproxy', '-o', 'json']);
    expect(JSON.parse(found.stdout).items.map((n: any) => n.name)).toEqual(['web-01']);

    const jobs = JSON.parse(consort(['jobs', 'list', '-o', 'json', '--kind', 'host']).stdout);
    expect(jobs.items.map((j: any) => j.action)).toEqual(['patch', 'create']);
    const shown = consort(['jobs', 'show', jobs.items[1].id]);
    expect(shown.stdout).toMatch(/^job j-\S+: create host\/web-01: succeeded$/m);

    const noWait = consort(['delete', 'host', 'web-01', '--no-wait']);
    expect(noWait.code).toBe(0);
    expect(noWait.stdout.trim()).toMatch(/^j-[a-z0-9]+-[0-9a-f]+$/);
    const watched = consort(['jobs', 'watch', noWait.stdout.trim()]);
    expect(watched.code).toBe(0);
    expect(consort(['get', 'host', 'web-01']).code).toBe(4);
  }, 120_000);

  it('a failing job: exit 1 and the provider reason on stderr', () => {
    const failed = consort(['create', 'host', 'lost-1', 'subnet=nowhere']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /^consort: job j-\S+ failed: ipam rejected subnet="nowhere": subnet "nowhere" does not exist\n$/,
    );
  });

  it.each([
    [
      ['create', 'host', 'web-9', 'hwsepc=small'],
      'consort: unknown attribute "hwsepc" for host (did you mean "hwspec"?)',
    ],
    [
      ['create', 'host', 'web-9', 'hwspec=huge'],
      'consort: hwspec="huge": must be equal to one of the allowed values (one of small, medium, large)',
    ],
    [
      ['set', 'host', 'web-9', 'power+=on'],
      'consort: power is not a set list, so += does not apply; use power=...',
    ],
    [
      ['create', 'host', 'Web_9'],
      expect.stringMatching(/^consort: invalid node name "Web_9": .* \[INVALID_NAME\]$/),
    ],
    [['frobnicate'], expect.stringMatching(/^consort: Unknown argument: frobnicate/)],
    [['get', 'host'], 'consort: get needs the node name: consort get <kind> <name>'],
    [
      ['explain', 'create'],
      'consort: explain needs the kind and the node name: consort explain <action> <kind> <name>',
    ],
    [
      ['create', 'subnet', 'bad', 'cidr=10.1.2.0'],
      'consort: cidr="10.1.2.0": "10.1.2.0" is not a CIDR like 10.1.2.0/24',
    ],
    [
      ['create', 'vlan', 'v-bad', 'vid=1', '-o', 'xml'],
      expect.stringMatching(/^consort: -o takes table, json, yaml, csv or jsonpath=EXPR/),
    ],
    [
      ['delete', 'vlan', 'v1', '--wait=perhaps'],
      'consort: --wait takes true/yes/on/1 or false/no/off/0, not "perhaps"',
    ],
  ])('usage error %j: exit 2, one line, no stack', (args, message) => {
    const result = consort(args);
    expect(result.code).toBe(2);
    const first = result.stderr.split('\n')[0];
    expect(first).toEqual(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('explain of a change that cannot converge: exit 1 and why on stderr', () => {
    // No subnet: nothing can ever give the host an address, so the plan does not succeed.
    const explain = consort(['explain', 'create', 'host', 'web-nosubnet', 'hwspec=small', 'power=on']);
    expect(explain.code).toBe(1);
    expect(explain.stdout).toMatch(/^plan: (blocked|failed)/m);
    expect(explain.stderr).toMatch(/^consort: the change would (block|fail): \S/);
  });

  it('lists and revokes tokens; a revoked token stops working at once', () => {
    const made = consort(['token', 'create', '--role', 'reader', '--description', 'to revoke', '-o', 'json']);
    expect(made.code).toBe(0);
    const { id, token } = JSON.parse(made.stdout) as { id: string; token: string };
    const listed = consort(['token', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID\s+ROLE\s+DESCRIPTION\s+CREATED\s+EXPIRES$/m);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+reader\\s+to revoke\\s+\\S+\\s+never$`, 'm'));
    expect(consort(['get', 'host', 'no-such-host'], { CONSORT_TOKEN: token }).stderr).not.toContain(
      'unknown token',
    );
    const revoked = consort(['token', 'revoke', id]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${id}\n` });
    const after = consort(['get', 'host', 'no-such-host'], { CONSORT_TOKEN: token });
    expect(after.code).toBe(6);
    expect(after.stderr).toContain('unknown token');
    expect(consort(['token', 'revoke', id])).toMatchObject({
      code: 4,
      stderr: `consort: token ${id} does not exist [NOT_FOUND]\n`,
    });
  });

  it('an unreachable server: exit 3', async () => {
    const port = await freePort();
    const result = consort(['get', 'host', 'web-01'], { CONSORT_URL: `http://127.0.0.1:${port}` });
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(
      `consort: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); is the server running? (CONSORT_URL)\n`,
    );
  });

  it('named contexts in the config file, overridden by the environment', async () => {
    const closedPort = await freePort();
    const set = consort(
      ['context', 'set', 'dev', '--url', server.api.url, '--token', server.api.token, '--use'],
      {
        CONSORT_URL: undefined,
        CONSORT_TOKEN: undefined,
      },
    );
    expect(set.code).toBe(0);
    const file = readFileSync(join(home.dir, 'config', 'consort', 'config.yaml'), 'utf8');
    expect(parseYaml(file)).toEqual({
      'current-context': 'dev',
      contexts: { dev: { url: server.api.url, token: server.api.token } },
    });
    const viaContext = consort(['schema', '-o', 'json'], {
      CONSORT_URL: undefined,
      CONSORT_TOKEN: undefined,
    });
    expect(viaContext.code).toBe(0);
    expect(JSON.parse(viaContext.stdout).kinds.map((k: any) => k.name)).toContain('host');
    const overridden = consort(['schema'], {
      CONSORT_URL: `http://127.0.0.1:${closedPort}`,
      CONSORT_TOKEN: undefined,
    });
    expect(overridden.code).toBe(3);
    const missing = consort(['schema', '--context', 'prod'], { CONSORT_URL: undefined });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^consort: no context "prod" in .*config\.yaml \(known: dev\)\n$/);
  });

  it('prints bash and zsh completion scripts', () => {
    expect(consort(['completion', 'bash']).stdout).toContain(
      'complete -o bashdefault -o default -F _consort_yargs_completions consort',
    );
    expect(consort(['completion', 'zsh']).stdout).toContain('compdef _consort_yargs_completions consort');
  });

  it('history: who changed a node, when, by which job, and the diff (issue 14 item 6)', () => {
    expect(consort(['create', 'vlan', 'hist-1', 'vid=5']).code).toBe(0);
    const set = consort(['set', 'vlan', 'hist-1', 'vid=6', '-o', 'json']);
    const job = JSON.parse(set.stdout).id as string;
    const history = consort(['history', 'vlan', 'hist-1']);
    expect(history.code).toBe(0);
    const lines = history.stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\S+Z  patch:succeeded  by consortium dev \\([0-9a-f]+\\)  job ${job}$`,
      ),
    );
    expect(lines[1]).toBe('    ~ vid: 5 -> 6');
    expect(history.stdout).toMatch(
      /create:succeeded {2}by consortium dev .*\n {4}\+ present: true\n {4}\+ vid: 5\n/,
    );
    const csv = consort(['history', 'vlan', 'hist-1', '-o', 'csv']).stdout.split('\r\n');
    expect(csv[0]).toBe('AT,ACTOR,ACTION,JOB,CHANGE');
    expect(csv[1]).toMatch(
      new RegExp(`,consortium dev \\([0-9a-f]+\\),patch:succeeded,${job},~ vid: 5 -> 6$`),
    );
    expect(consort(['history', 'vlan', 'never-made']).stdout).toBe(
      'no changes of vlan/never-made recorded\n',
    );
  });

  it('exit codes: distinct for job failed, usage, unreachable, not found, conflict, forbidden (issue 14 item 9)', () => {
    expect(consort(['create', 'vlan', 'codes-1', 'vid=9']).code).toBe(0);
    expect(consort(['get', 'vlan', 'no-such']).code).toBe(4);
    const conflict = consort(['create', 'vlan', 'codes-1', 'vid=9']);
    expect(conflict.code).toBe(5);
    expect(conflict.stderr).toMatch(/\[CONFLICT\]\n$/);
    expect(consort(['set', 'vlan', 'codes-1', 'vid=10', '--if-revision', '1']).code).toBe(5);
    const reader = JSON.parse(consort(['token', 'create', '--role', 'reader', '-o', 'json']).stdout).token;
    const forbidden = consort(['set', 'vlan', 'codes-1', 'vid=11'], { CONSORT_TOKEN: reader });
    expect(forbidden.code).toBe(6);
    expect(forbidden.stderr).toMatch(/needs the operator role.*\[FORBIDDEN\]/);
    expect(consort(['get', 'vlan', 'codes-1'], { CONSORT_TOKEN: 'cst_wrong' }).code).toBe(6);
    // A reader may explain: it changes nothing (item 7).
    expect(consort(['explain', 'set', 'vlan', 'codes-1', 'vid=12'], { CONSORT_TOKEN: reader }).code).toBe(0);
    const help = consort(['--help'], { COLUMNS: '200' }).stdout;
    expect(help).toContain(
      'Exit codes: 0 succeeded, 1 job failed or expired, 2 usage error, 3 server unreachable,',
    );
    expect(help).toContain('4 not found, 5 conflict');
  }, 90_000);

  it('lists: columns with power and addresses, csv, jsonpath, paging, and an empty result says so', () => {
    expect(consort(['create', 'subnet', 'cols-net', 'cidr=10.7.0.0/24', 'gateway=10.7.0.1']).code).toBe(0);
    for (const name of ['cols-1', 'cols-2', 'cols-3']) {
      expect(
        consort(['create', 'host', name, 'hwspec=small', 'subnet=cols-net', 'datacenter=cols']).code,
      ).toBe(0);
    }
    const table = consort(['list', 'host', 'datacenter=cols']).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME\s+IP\s+/);
    expect(table[1]).toMatch(/^cols-1\s+10\.7\.0\.\d+\s+/);
    const withPower = consort([
      'list',
      'host',
      'datacenter=cols',
      '--columns',
      'power,interfaces.ip,hwspec',
      '-o',
      'csv',
    ]);
    expect(withPower.stdout.split('\r\n').slice(0, 2)).toEqual([
      'NAME,POWER,IP,HWSPEC',
      expect.stringMatching(/^cols-1,,10\.7\.0\.\d+,small$/),
    ]);
    const names = consort(['list', 'host', 'datacenter=cols', '-o', 'jsonpath={.items[*].name}']);
    expect(names.stdout).toBe('cols-1\ncols-2\ncols-3\n');
    const first = consort(['list', 'host', 'datacenter=cols', '--limit', '2']);
    const cursor = /\(more: --cursor (\S+), or --all\)/.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const rest = consort([
      'list',
      'host',
      'datacenter=cols',
      '--limit',
      '2',
      '--cursor',
      cursor as string,
      '-o',
      'jsonpath={.items[*].name}',
    ]);
    expect(rest.stdout).toBe('cols-3\n');
    const all = consort([
      'list',
      'host',
      'datacenter=cols',
      '--limit',
      '1',
      '--all',
      '-o',
      'jsonpath={.items[*].name}',
    ]);
    expect(all.stdout).toBe('cols-1\ncols-2\ncols-3\n');
    const found = consort(['search', 'kind=host and datacenter=cols and name ~ "cols-1"']);
    expect(found.stdout.split('\n')[0]).toMatch(/^KIND\s+NAME\s+IP$/);
    expect(consort(['list', 'host', 'datacenter=nowhere'])).toMatchObject({
      code: 0,
      stdout: 'no host matches\n',
    });
    expect(consort(['search', 'kind=vlan and vid=4000'])).toMatchObject({
      code: 0,
      stdout: 'nothing matches\n',
    });
    // Boolean words are the same everywhere: flags and attribute values.
    const noWait = consort(['set', 'host', 'cols-1', 'netboot=no', '--wait=no']);
    expect(noWait.stdout.trim()).toMatch(/^j-\S+$/);
    expect(consort(['jobs', 'watch', noWait.stdout.trim()]).code).toBe(0);
    expect(JSON.parse(consort(['get', 'host', 'cols-1', '-o', 'json']).stdout).attrs.netboot).toBe(false);
    expect(consort(['set', 'host', 'cols-1', 'netboot=maybe']).stderr).toBe(
      'consort: netboot: "maybe" is not true/yes/on/1 or false/no/off/0\n',
    );
  }, 120_000);

  it('a misspelt kind: did you mean', () => {
    const result = consort(['list', 'hots']);
    expect(result.code).toBe(4);
    expect(result.stderr).toBe(
      'consort: unknown kind "hots" (did you mean "host"? known: host, hypervisor, subnet, vip, vlan) [NOT_FOUND]\n',
    );
  });

  it('schema host shows descriptions and references', () => {
    const shown = consort(['schema', 'host'], { COLUMNS: '250' }).stdout;
    expect(shown.split('\n')[0]).toMatch(/^ATTRIBUTE\s+TYPE\s+AUTHORITY\s+REFERS TO\s+VALUES\s+DESCRIPTION$/);
    expect(shown).toMatch(/^subnet\s+string\s+\S+\s+-> subnet\s+\S.*$/m);
    expect(shown).toMatch(/^interfaces\[\*\]\.name\s+string\s+.*the interface name, e\.g\. eth0$/m);
  });

  it('help: --version, positionals in usage order, every option described, wrapped between words', async () => {
    const version = consort(['--version']);
    expect(version).toMatchObject({
      code: 0,
      stdout: `${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`,
    });
    const commands = [
      '',
      'get',
      'list',
      'search',
      'create',
      'set',
      'delete',
      'explain',
      'history',
      'jobs list',
      'jobs show',
      'jobs watch',
      'jobs cancel',
      'schema',
      'token create',
      'token list',
      'token revoke',
      'context set',
      'context use',
      'context list',
      'completion',
    ];
    // Every help at two widths, a few at a time: forty starts one after another take minutes on a busy machine.
    const helps: { wide: string; narrow: string }[] = [];
    for (let i = 0; i < commands.length; i += 4) {
      helps.push(
        ...(await Promise.all(
          commands.slice(i, i + 4).map(async (command) => {
            const args = [...command.split(' ').filter((w) => w !== ''), '--help'];
            const [wide, narrow] = await Promise.all([
              consortAsync(args, { COLUMNS: '1000' }),
              consortAsync(args, { COLUMNS: '60' }),
            ]);
            return { wide, narrow };
          }),
        )),
      );
    }
    for (const { wide, narrow } of helps) {
      // Never mid-word: the words are the same at any width, only the line breaks move.
      const words = (text: string) => text.split(/\s+/).filter((w) => w !== '');
      expect(words(narrow)).toEqual(words(wide));
      for (const line of narrow.split('\n'))
        if (line.trim().includes(' ')) expect(line.length).toBeLessThanOrEqual(60);
      // Every positional and option has a description: an entry is not its name and its type alone.
      const entries = wide.split('\n').filter((l) => /^ {2}\S|^ {6}--/.test(l) && !/^ {2}consort /.test(l));
      for (const entry of entries) expect(entry.trim()).not.toMatch(/^(-\w, )?\S+\s+\[\w+\]/);
      const usage = wide.split('\n')[0] ?? '';
      const positionals = [...usage.matchAll(/[<[](\w+)(?:\.\.)?[>\]]/g)]
        .map((m) => m[1])
        .filter((p) => p !== 'options' && p !== 'command');
      const listed =
        (wide.split('Positionals:')[1] ?? '')
          .split('\n\n')[0]
          ?.split('\n')
          .map((l) => /^ {2}(\w+)/.exec(l)?.[1])
          .filter((p) => p !== undefined) ?? [];
      expect(listed).toEqual(positionals);
    }
  }, 240_000);

  it('completes kinds, node names and attribute names from the server', () => {
    expect(consort(['create', 'vlan', 'compl-1', 'vid=3']).code).toBe(0);
    const complete = (...words: string[]) =>
      consort(['--get-yargs-completions', 'consort', ...words])
        .stdout.split('\n')
        .filter((l) => l !== '');
    expect(complete('get', '')).toEqual(['host', 'hypervisor', 'subnet', 'vlan', 'vip']);
    expect(complete('get', 'hy')).toEqual(['hypervisor']);
    expect(complete('get', 'vlan', 'compl')).toEqual(['compl-1']);
    expect(complete('set', 'vlan', 'compl-1', 'v')).toEqual(['vid=']);
    expect(complete('explain', 'cr')).toEqual(['create']);
    expect(complete('hist')).toContain('history');
  }, 60_000);
});
