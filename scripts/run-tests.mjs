#!/usr/bin/env node
// Runs the whole test suite with vitest and ends with one line `N passed, N failed, N skipped` that CI reads.
// The counts come from vitest's JSON report; a run that produced no report counts as one failure.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const out = '.ci/out';
const report = `${out}/vitest.json`;
mkdirSync(out, { recursive: true });
rmSync(report, { force: true });
const run = spawnSync(
  'pnpm',
  [
    'exec',
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests;
  skipped = json.numPendingTests + json.numTodoTests;
  // A file that fails to load has no tests in the counts; count it so that it cannot pass silently.
  failed += json.testResults.filter(
    (file) => file.status === 'failed' && file.assertionResults.length === 0,
  ).length;
} catch {
  failed = Math.max(failed, 1);
}
const exitCode = run.status === 0 && failed === 0 ? 0 : 1;
writeFileSync(`${out}/summary.json`, JSON.stringify({ passed, failed, skipped }));
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(exitCode);
