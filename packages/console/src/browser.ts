/**
 * Headless Chromium for the console's browser tests and its benchmark: Debian's /usr/bin/chromium (installed by
 * scripts/install-system-deps.sh) driven by playwright-core, which downloads no browser of its own.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';

/** The browser the tests drive; CONSORTIUM_CHROMIUM names another. */
export const CHROMIUM = process.env['CONSORTIUM_CHROMIUM'] ?? '/usr/bin/chromium';

/** The built console's index.html; the server serves it only once `make build` has run. */
export const CONSOLE_INDEX = fileURLToPath(new URL('../dist/index.html', import.meta.url));

/** Launches headless Chromium without a sandbox (tests run as root in CI) and without background traffic. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-system-deps.sh (Debian package chromium)`);
  }
  if (!existsSync(CONSOLE_INDEX)) {
    throw new Error(`${CONSOLE_INDEX} is missing: run make build (it builds the console)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--disable-extensions',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}
