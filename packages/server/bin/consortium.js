#!/usr/bin/env node
// The consortium binary; the code lives in dist/ (run `make build` first).
import '../dist/main.js';
