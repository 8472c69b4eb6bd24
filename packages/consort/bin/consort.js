#!/usr/bin/env node
// consort, the shell client of Consortium: the one-file bundle when built (fast start), else the compiled sources.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/consort.mjs', import.meta.url);
await import(existsSync(bundle) ? bundle.href : new URL('../dist/main.js', import.meta.url).href);
