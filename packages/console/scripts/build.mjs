// Builds the console into dist/: hashed JS and CSS under dist/assets/ (served with a year-long cache) and an
// index.html that names them (served uncached). esbuild is already the workspace's bundler (consort's bundle), so
// the console needs no second build tool; it runs offline from the lockfile.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = `${root}dist`;
rmSync(dist, { recursive: true, force: true });
mkdirSync(`${dist}/assets`, { recursive: true });

const result = await build({
  entryPoints: { app: `${root}app/main.tsx` },
  outdir: `${dist}/assets`,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // Types of @consortium/core are read from its sources; nothing of it is bundled (type imports only).
  conditions: ['@consortium/source'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const script = outputs.find((file) => file.endsWith('.js'));
const style = outputs.find((file) => file.endsWith('.css'));
if (script === undefined || style === undefined) throw new Error(`console build made ${outputs.join(', ')}`);

// No inline script or style: the Content-Security-Policy allows only files from the same origin.
writeFileSync(
  `${dist}/index.html`,
  `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Consortium</title>
    <link rel="stylesheet" href="/assets/${style}" />
    <script type="module" src="/assets/${script}"></script>
  </head>
  <body>
    <div id="app"></div>
    <noscript>The Consortium console needs JavaScript; the API and consort work without it.</noscript>
  </body>
</html>
`,
);
