/** The real `consort` binary against a real `consortium dev` server. */
import { spawnSync } from 'node:child_process';
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

describe('consort', () => {
  it('runs the DESIGN §2 flow from the shell', () => {
    const subnet = consort(['create', 'subnet', 'pek1-web', 'cidr=10.1.2.0/24', 'gateway=10.1.2.1']);
    expect(subnet.stderr).toBe('');
    expect(subnet.code).toBe(0);
    expect(subnet.stdout).toMatch(/^succeeded in \S+ \(1 rounds\)$/m);

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
    expect(consort(['get', 'host', 'web-01']).code).toBe(1);

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
    expect(consort(['get', 'host', 'web-01']).code).toBe(1);
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
    [['get', 'host'], expect.stringMatching(/^consort: Not enough non-option arguments/)],
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
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('unknown token');
    expect(consort(['token', 'revoke', id])).toMatchObject({
      code: 1,
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
});
