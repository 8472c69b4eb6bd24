#!/usr/bin/env node
// Derives the TypeScript project references from the workspace, so that adding a package or plugin needs no edit
// of tsconfig files: the root tsconfig.json references every workspace project (a folder with a tsconfig.json),
// and each project references the workspace projects among its `dependencies` (tests are not built, so
// devDependencies do not count). `--check` (in `make lint`) fails when a file differs; `--write` rewrites them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const mode = process.argv[2];
if (mode !== '--check' && mode !== '--write') {
  console.error('usage: node scripts/workspace-refs.mjs --check|--write');
  process.exit(2);
}

// The folders pnpm-workspace.yaml names: `packages/*`, `plugins/*`, `test/*` and `bench`.
const globs = readFileSync('pnpm-workspace.yaml', 'utf8')
  .split('\n')
  .map((line) => /^\s+-\s+(\S+)\s*$/.exec(line)?.[1])
  .filter((glob) => glob !== undefined);
const folders = globs.flatMap((glob) =>
  glob.endsWith('/*')
    ? readdirSync(glob.slice(0, -2), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => join(glob.slice(0, -2), entry.name))
    : [glob],
);
const projects = new Map();
for (const folder of folders.sort()) {
  if (!existsSync(join(folder, 'package.json')) || !existsSync(join(folder, 'tsconfig.json'))) continue;
  const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  projects.set(manifest.name, { folder, manifest });
}

const stale = [];
const paths = (references) => JSON.stringify(references.map((r) => r.path).sort());

/** Sets `references` of one tsconfig file; records it when it names other projects (order does not matter). */
function update(file, references) {
  const config = JSON.parse(readFileSync(file, 'utf8'));
  if (paths(references) === paths(config.references ?? [])) return;
  stale.push(file);
  if (mode === '--write') {
    config.references = references;
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    spawnSync('pnpm', ['exec', 'prettier', '--write', file], { stdio: 'ignore' });
  }
}

for (const { folder, manifest } of projects.values()) {
  const file = join(folder, 'tsconfig.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  if (config.compilerOptions?.noEmit === true) continue;
  const deps = Object.keys(manifest.dependencies ?? {}).filter((name) => projects.has(name));
  update(
    file,
    deps.map((name) => ({ path: relative(folder, projects.get(name).folder) })),
  );
}
update(
  'tsconfig.json',
  [...projects.values()].map(({ folder }) => ({ path: folder })),
);

if (stale.length > 0 && mode === '--check') {
  console.error(`project references are out of date in: ${stale.join(', ')}`);
  console.error('run: node scripts/workspace-refs.mjs --write');
  process.exit(1);
}
if (mode === '--write')
  console.log(stale.length === 0 ? 'references up to date' : `rewrote ${stale.join(', ')}`);
