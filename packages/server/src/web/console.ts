/**
 * The web console (packages/console, built by `make build`): index.html at `/`, hashed assets under `/assets/`.
 * Every answer carries a strict Content-Security-Policy (scripts, styles and API calls from this origin only; no
 * inline code, no frames), so that a value shown in the page can never run as script. Hashed assets are cached for
 * a year; index.html never, so that a new build is picked up at the next load.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { sendProblem } from './problem.js';

/** The Content-Security-Policy of the console's pages. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The folder of the built console (`packages/console/dist`), found through the workspace package. */
export function consoleDist(): string {
  const manifest = createRequire(import.meta.url).resolve('@consortium/console/package.json');
  return join(dirname(manifest), 'dist');
}

const securityHeaders = (_req: Request, res: Response, next: NextFunction): void => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  next();
};

/**
 * The router of `/` and `/assets/`. When the console has not been built, `/` answers 404 with a problem saying how
 * to build it; the API works either way.
 */
export function consoleRouter(dist: string = consoleDist()): express.Router {
  const router = express.Router();
  const indexFile = join(dist, 'index.html');
  router.use(
    '/assets',
    securityHeaders,
    express.static(join(dist, 'assets'), {
      immutable: true,
      maxAge: '365d',
      index: false,
      redirect: false,
      fallthrough: true,
    }),
  );
  router.get(['/', '/index.html'], securityHeaders, (_req, res) => {
    // Read per request: a rebuilt console is served without restarting (it is a few hundred bytes).
    if (!existsSync(indexFile)) {
      sendProblem(res, 'NOT_FOUND', `the web console is not built (${indexFile} is missing; run make build)`);
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(readFileSync(indexFile, 'utf8'));
  });
  return router;
}
