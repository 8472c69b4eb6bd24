/**
 * The web console in a real browser (Debian's Chromium, headless) against the real `consortium dev` binary: one
 * browser and one server for the whole file. Every wait is for a condition in the page, never a fixed sleep.
 * Screenshots of each page go to .ci/out/console/.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BinaryServer } from '@consortium/server/test-support';
import { eventually, spawnBinary, tempDir } from '@consortium/server/test-support';
import { launchChromium } from './browser.js';

const SHOTS = fileURLToPath(new URL('../../../.ci/out/console/', import.meta.url));
const WAIT = 15_000;

describe('the web console in Chromium', { timeout: 60_000 }, () => {
  const data = tempDir('consortium-console-');
  let server: BinaryServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Changes the page sent to the API (create, patch, delete), to show that a refused form sends nothing. */
  const changes: string[] = [];

  const shot = async (name: string, on: Page = page): Promise<void> => {
    await on.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
  };
  /** Opens a page afresh (a link to the hash already shown would keep the page's state). */
  const open = async (hash: string, on: Page = page): Promise<void> => {
    await on.goto('about:blank');
    await on.goto(`${server.api.url}/${hash}`);
  };
  const signIn = async (on: Page, token: string): Promise<void> => {
    await on.goto(`${server.api.url}/`);
    await on.getByLabel('API token').fill(token);
    await on.getByRole('button', { name: 'Sign in' }).click();
    await on.getByRole('navigation', { name: 'Sections' }).waitFor({ timeout: WAIT });
  };
  /** Waits for a job page to show an ended state; returns it and the states the page saw on the way. */
  const jobEnds = async (on: Page = page): Promise<{ state: string; seen: string }> => {
    const state = on.locator('dd[data-state]');
    await on
      .locator(
        'dd[data-state="succeeded"], dd[data-state="failed"], dd[data-state="cancelled"], dd[data-state="expired"]',
      )
      .waitFor({ timeout: WAIT });
    return {
      state: (await state.getAttribute('data-state')) ?? '',
      seen: (await state.getAttribute('data-seen')) ?? '',
    };
  };

  beforeAll(async () => {
    // Only this run's pictures: a failure picture from an earlier run must not linger beside them.
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
    // The sandbox's simulated backends take a second per operation, so that a host's job runs for seconds and the
    // page is sure to watch it running, however slow the machine is to open the page.
    const config = join(data.dir, 'consortium.yaml');
    writeFileSync(
      config,
      [
        'plugins:',
        "  - module: '@consortium/plugin-inventory'",
        "  - module: '@consortium/plugin-ipam'",
        "  - module: '@consortium/plugin-sandbox'",
        '    config:',
        '      delayMs: 1000',
        '',
      ].join('\n'),
    );
    [server, browser] = await Promise.all([
      spawnBinary(data.dir, ['--log-level', 'warn', '--config', config]),
      launchChromium(),
    ]);
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('request', (request: Request) => {
      if (['POST', 'PATCH', 'DELETE'].includes(request.method()) && request.url().includes('/api/inventory'))
        changes.push(`${request.method()} ${request.url()}`);
    });
  }, 60_000);
  afterEach(async (ctx) => {
    // A failed test leaves a picture of the page it failed on.
    if (ctx.task.result?.state === 'fail')
      await shot(`failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`);
  });
  afterAll(async () => {
    await browser.close();
    server.child.kill('SIGTERM');
    data.remove();
  });

  it('serves the console with a strict CSP, hashed assets cached for a year and index.html uncached', async () => {
    const index = await fetch(`${server.api.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${server.api.url}${script ?? ''}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${server.api.url}/assets/missing.js`)).status).toBe(404);
  });

  it('signs in with a token kept in session storage, never in the URL', async () => {
    await page.goto(`${server.api.url}/`);
    await page.getByLabel('API token').fill('cst_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'unknown token' }).waitFor({ timeout: WAIT });
    await shot('sign-in');
    await signIn(page, server.api.token);
    expect(page.url()).not.toContain(server.api.token);
    expect(await page.evaluate("sessionStorage.getItem('consortium.token')")).toBe(server.api.token);
    expect(await page.evaluate('localStorage.length')).toBe(0);
  });

  it('shows the schema message for a bad value in the form and sends nothing', async () => {
    await open('#/create/subnet');
    await page.getByLabel('Name', { exact: true }).fill('bad-net');
    await page.getByLabel(/^vlan/).fill('5000');
    await page.getByLabel(/^cidr/).fill('10.9.0.0/99');
    const before = changes.length;
    await page.getByRole('button', { name: 'Create' }).click();
    const vlanError = page.locator('#attr-vlan-error');
    await vlanError.waitFor({ timeout: WAIT });
    expect(await vlanError.textContent()).toMatch(/4094/);
    expect(await page.locator('#attr-cidr-error').textContent()).toMatch(/pattern/);
    expect(await page.getByLabel(/^vlan/).getAttribute('aria-invalid')).toBe('true');
    await shot('create-schema-error');
    expect(changes.slice(before)).toEqual([]);
  });

  it('creates a subnet and then a host through the forms, and draws the host job rounds live', async () => {
    await open('#/create/subnet');
    await page.getByLabel('Name', { exact: true }).fill('net1');
    await page.getByLabel(/^cidr/).fill('10.1.0.0/24');
    await page.getByLabel(/^gateway/).fill('10.1.0.1');
    await page.getByRole('button', { name: 'Create' }).click();
    expect((await jobEnds()).state).toBe('succeeded');

    await open('#/create/host');
    await page.getByLabel('Name', { exact: true }).fill('web1');
    // The subnet picker lists the subnet nodes; hwspec offers its enum.
    await page.locator('#attr-subnet option[value="net1"]').waitFor({ state: 'attached', timeout: WAIT });
    await page.getByLabel(/^subnet/).selectOption('net1');
    await page.getByLabel(/^hwspec/).selectOption('small');
    await page.getByLabel(/^power/).selectOption('on');
    await page.getByRole('button', { name: 'Add interfaces row' }).click();
    await page.locator('#attr-interfaces-0-name').fill('eth0');
    await shot('create-host');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: /^Job / }).waitFor({ timeout: WAIT });
    const ended = await jobEnds();
    expect(ended.state).toBe('succeeded');
    // The page followed the job while it ran: it saw it running before it ended, and drew each round from events.
    expect(ended.seen.split(' ')).toContain('running');
    expect(await page.locator('.round').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('[data-provider="sandbox-vm"]').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('.deferred').first().textContent()).toContain('waiting for PXE registration');
    expect(await page.locator('dd[data-state]').textContent()).toMatch(/\(([1-9]\d*) events received live\)/);
    await shot('job');
  });

  it('shows each value with the provider that owns it and references as links', async () => {
    await open('#/node/host/web1');
    const row = (path: string) => page.locator(`tr[data-path="${path}"]`);
    await row('interfaces[eth0].ip').waitFor({ timeout: WAIT });
    expect(await row('interfaces[eth0].ip').locator('.owner-cell').textContent()).toBe('ipam');
    expect(await row('interfaces[eth0].ip').locator('td').first().textContent()).toBe('10.1.0.2');
    expect(await row('hwspec').locator('.owner-cell').textContent()).toBe('sandbox-vm');
    expect(await row('interfaces[eth0].mac').locator('.owner-cell').textContent()).toBe('sandbox-vm');
    expect(await row('subnet').locator('a').getAttribute('href')).toBe('#/node/subnet/net1');
    await shot('node');
  });

  it('explains a change round by round, then applies it with If-Match', async () => {
    await open('#/node/host/web1');
    const revision = Number(await page.locator('[data-revision]').getAttribute('data-revision'));
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel(/^description/).fill('front end');
    await page.getByRole('button', { name: 'Explain' }).click();
    const plan = page.getByRole('region', { name: /^Plan:/ });
    await plan.waitFor({ timeout: WAIT });
    expect(await plan.locator('h2').textContent()).toMatch(/succeeded in 1 round/);
    expect(
      await plan.locator('[data-round="1"] [data-provider="inventory"] code').first().textContent(),
    ).toBe('set description = front end');
    await shot('explain');
    const patches: Record<string, string>[] = [];
    page.on('request', (r) => {
      if (r.method() === 'PATCH') patches.push(r.headers());
    });
    await page.getByRole('button', { name: 'Apply' }).click();
    expect((await jobEnds()).state).toBe('succeeded');
    expect(patches[0]?.['if-match']).toBe(`"${revision}"`);
    const node = await server.api.request('GET', '/api/inventory/host/web1');
    expect(node.body.attrs.description).toBe('front end');
  });

  it('says what changed when the node moved on meanwhile, and reloads it', async () => {
    await open('#/node/host/web1');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel(/^owner/).fill('team-a');
    // Someone else changes the node while the form is open.
    const other = await server.api.request('PATCH', '/api/inventory/host/web1?wait=20s', {
      body: { description: 'changed elsewhere' },
      type: 'application/merge-patch+json',
    });
    expect(other.body.state).toBe('succeeded');
    await page.getByRole('button', { name: 'Apply' }).click();
    const conflict = page.locator('.banner.conflict');
    await conflict.waitFor({ timeout: WAIT });
    expect(await conflict.textContent()).toContain('Changed meanwhile');
    expect(await conflict.textContent()).toContain('description: front end → changed elsewhere');
    await shot('conflict');
    await conflict.getByRole('button', { name: 'Reload the node' }).click();
    await eventually(async () =>
      (await page.getByLabel(/^description/).inputValue()) === 'changed elsewhere' ? true : undefined,
    );
    const node = await server.api.request('GET', '/api/inventory/host/web1');
    expect(node.body.attrs.owner).toBeUndefined();
  });

  it('changes 5 hosts at once, one job per node, with progress per node', async () => {
    for (let i = 1; i <= 5; i++) {
      const made = await server.api.request('POST', '/api/inventory/host?wait=20s', {
        body: { name: `bulk${i}`, attrs: { description: 'bulk host' } },
      });
      expect(made.body.state).toBe('succeeded');
    }
    await open('#/inventory/host?q=name__isw%3Dbulk');
    await page.locator('table.inventory[data-count="5"]').waitFor({ timeout: WAIT });
    await page.getByLabel('Select every node on this page').check();
    const bulk = page.getByRole('region', { name: /5 selected/ });
    await bulk.getByLabel('Attribute').selectOption('status');
    await bulk.getByLabel('New value').selectOption('active');
    await bulk.getByRole('button', { name: 'Change 5' }).click();
    await eventually(
      async () => ((await bulk.locator('tr[data-state="succeeded"]').count()) === 5 ? true : undefined),
      WAIT,
      'five succeeded jobs',
    );
    expect(await bulk.locator('tr[data-node] a').count()).toBe(5);
    await shot('bulk');
    for (let i = 1; i <= 5; i++) {
      const node = await server.api.request('GET', `/api/inventory/host/bulk${i}`);
      expect(node.body.attrs.status).toBe('active');
    }
  });

  it('lists the inventory with a column chooser, and shows a query error where it was typed', async () => {
    await open('#/inventory/host');
    await page.locator('table.inventory[data-count="6"]').waitFor({ timeout: WAIT });
    await page.getByText('Columns', { exact: true }).click();
    await page.getByRole('checkbox', { name: 'status' }).check();
    await page.locator('th', { hasText: 'status' }).waitFor({ timeout: WAIT });
    await shot('inventory');
    await page.getByLabel('Filter or search').fill('power = = on');
    await page.getByRole('button', { name: 'Apply' }).click();
    const error = page.locator('#filter-error');
    await eventually(
      async () => ((await error.textContent()) !== '' ? true : undefined),
      WAIT,
      'query error',
    );
    expect(await page.getByLabel('Filter or search').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Filter or search').fill('power=on and hwspec in (small, large)');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('table.inventory[data-count="1"] tr[data-name="web1"]').waitFor({ timeout: WAIT });
  });

  it('lists jobs and manages tokens', async () => {
    await open('#/jobs');
    await page.locator('table.jobs tbody tr').first().waitFor({ timeout: WAIT });
    expect(await page.locator('table.jobs tbody tr').count()).toBeGreaterThanOrEqual(10);
    await shot('jobs');
    await open('#/tokens');
    await page.getByLabel('Role').selectOption('operator');
    await page.getByLabel('Description').fill('ci robot');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.locator('#new-token').textContent();
    expect(secret).toMatch(/^cst_/);
    const row = page.locator('tr', { hasText: 'ci robot' });
    await row.waitFor({ timeout: WAIT });
    await shot('tokens');
    page.once('dialog', (dialog) => void dialog.accept());
    await row.getByRole('button', { name: /^Revoke/ }).click();
    await row.waitFor({ state: 'detached', timeout: WAIT });
    const refused = await server.api.request('GET', '/api/whoami', { token: secret ?? '' });
    expect(refused.status).toBe(401);
  });

  it('shows the audit log overall and per node', async (ctx) => {
    const probe = await server.api.request('GET', '/api/audit?limit=1');
    // The audit API comes with issue 14; until it is in main this test waits for it rather than pretending.
    if (probe.status === 404) ctx.skip();
    await open('#/audit?kind=host&name=web1');
    await page.locator('table[aria-label="Audit entries"] tbody tr').first().waitFor({ timeout: WAIT });
    await shot('audit');
  });

  it('shows a reader no edit controls, and an unexpected 403 plainly', async () => {
    const made = await server.api.request('POST', '/api/tokens', { body: { role: 'reader' } });
    const reader = await context.browser()!.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const readerPage = await reader.newPage();
      await signIn(readerPage, made.body.token as string);
      await readerPage.goto(`${server.api.url}/#/inventory/host`);
      await readerPage.locator('table.inventory tr[data-name="web1"]').waitFor({ timeout: WAIT });
      expect(await readerPage.getByRole('link', { name: 'New host' }).count()).toBe(0);
      expect(await readerPage.locator('table.inventory input[type="checkbox"]').count()).toBe(0);
      expect(await readerPage.locator('.bulk').count()).toBe(0);
      await readerPage.goto(`${server.api.url}/#/node/host/web1`);
      await readerPage.locator('tr[data-path="hwspec"]').waitFor({ timeout: WAIT });
      expect(await readerPage.getByRole('button', { name: 'Edit' }).count()).toBe(0);
      expect(await readerPage.getByRole('button', { name: 'Delete' }).count()).toBe(0);
      await shot('node-reader', readerPage);
      await readerPage.goto(`${server.api.url}/#/tokens`);
      const banner = readerPage.getByRole('alert').filter({ hasText: 'Not allowed' });
      await banner.waitFor({ timeout: WAIT });
      expect(await banner.textContent()).toContain('this needs the admin role');
    } finally {
      await reader.close();
    }
  });

  it('is usable on a narrow screen', async () => {
    const narrow = await context
      .browser()!
      .newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    try {
      const phone = await narrow.newPage();
      await signIn(phone, server.api.token);
      await phone.goto(`${server.api.url}/#/node/host/web1`);
      await phone.locator('tr[data-path="hwspec"]').waitFor({ timeout: WAIT });
      // Nothing but the tables' own scrollers is wider than the screen.
      const overflow = await phone.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(overflow).toBeLessThanOrEqual(0);
      await shot('node-narrow', phone);
      // The first thing the keyboard reaches is the skip link, and it moves the focus to the page.
      const first = await phone.evaluate(
        "document.querySelector('a[href], button, input, select')?.textContent",
      );
      expect(first).toBe('Skip to the page');
      await phone.locator('.skip').focus();
      await phone.keyboard.press('Enter');
      expect(await phone.evaluate('document.activeElement?.id')).toBe('main');
    } finally {
      await narrow.close();
    }
  });
});
