#!/usr/bin/env node
// consort, the shell client of Consortium: the bundle when built, else the compiled sources.
import('../dist/consort.mjs').catch(() => import('../dist/main.js'));
