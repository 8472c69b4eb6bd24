/**
 * The example plugin passes the provider contract against a real directory. Writes are counted as changes of the
 * directory (a file added, removed, or rewritten: its content or modification time changed); the transient fault
 * is the directory moved away, as an unmounted share would be.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeProviderContract } from '@consortium/testkit';
import { labelsProvider } from './index.js';

describeProviderContract('example (labels in a directory)', () => {
  const root = mkdtempSync(join(tmpdir(), 'consortium-example-'));
  const directory = join(root, 'labels');
  const away = join(root, 'unmounted');
  mkdirSync(directory);
  let seen = new Map<string, string>();
  let writes = 0;
  const files = (): Map<string, string> =>
    new Map(
      readdirSync(directory).map((name) => {
        const path = join(directory, name);
        return [name, `${String(statSync(path).mtimeMs)} ${readFileSync(path, 'utf8')}`];
      }),
    );
  return Promise.resolve({
    provider: labelsProvider(directory),
    create: (name) => ({
      node: { present: true, hostname: `${name}.example.com` },
      updates: [{ path: 'label', op: 'set', value: `R12-U${String(name.length)}` }],
    }),
    writes: () => {
      const now = files();
      for (const name of new Set([...seen.keys(), ...now.keys()]))
        if (seen.get(name) !== now.get(name)) writes++;
      seen = now;
      return Promise.resolve(writes);
    },
    holds: (name) => {
      const path = join(directory, `${name}.label`);
      try {
        return Promise.resolve(readFileSync(path, 'utf8'));
      } catch {
        return Promise.resolve(null);
      }
    },
    injectTransientFault: () => {
      renameSync(directory, away);
      return Promise.resolve();
    },
    clearFaults: () => {
      try {
        renameSync(away, directory);
      } catch {
        // Not moved away in this test.
      }
      return Promise.resolve();
    },
    cleanup: () => {
      rmSync(root, { recursive: true, force: true });
      return Promise.resolve();
    },
  });
});
