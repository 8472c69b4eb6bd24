/**
 * Where `consort` talks to: named contexts in `~/.config/consort/config.yaml` (or `$XDG_CONFIG_HOME`), the
 * current one chosen there or with `--context`, all overridden by `CONSORT_URL` and `CONSORT_TOKEN`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CliError, EXIT, usage } from './errors.js';

/** One named server. */
export interface Context {
  readonly url: string;
  readonly token?: string;
}

/** The config file. */
export interface ConsortConfig {
  readonly 'current-context'?: string;
  readonly contexts: Readonly<Record<string, Context>>;
}

/** The path of the config file. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] ?? join(env['HOME'] ?? homedir(), '.config');
  return join(base, 'consort', 'config.yaml');
}

/** Reads the config file; a missing file is an empty config. Throws `CliError` (exit 2) for a broken one. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): ConsortConfig {
  const path = configPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { contexts: {} };
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw usage(`${path} is not valid YAML: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  const config = (parsed ?? {}) as { 'current-context'?: unknown; contexts?: unknown };
  if (typeof config !== 'object' || (config.contexts !== undefined && typeof config.contexts !== 'object')) {
    throw usage(`${path} must be a mapping with a "contexts" mapping`);
  }
  const contexts: Record<string, Context> = {};
  for (const [name, value] of Object.entries((config.contexts ?? {}) as Record<string, unknown>)) {
    const ctx = value as { url?: unknown; token?: unknown } | null;
    if (ctx === null || typeof ctx.url !== 'string') throw usage(`${path}: context "${name}" needs a url`);
    contexts[name] = { url: ctx.url, ...(typeof ctx.token === 'string' ? { token: ctx.token } : {}) };
  }
  const current = config['current-context'];
  return { ...(typeof current === 'string' ? { 'current-context': current } : {}), contexts };
}

/** Writes the config file (mode 0600: it holds tokens). */
export function writeConfig(config: ConsortConfig, env: NodeJS.ProcessEnv = process.env): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, stringify(config), { mode: 0o600 });
  return path;
}

/** The server to talk to, and where that choice came from. */
export interface Target {
  readonly url: string;
  readonly token: string | undefined;
  readonly source: string;
}

/** Picks the server: `CONSORT_URL`/`CONSORT_TOKEN` win over `--context`, which wins over the current context. */
export function resolveTarget(contextName: string | undefined, env: NodeJS.ProcessEnv = process.env): Target {
  const config = readConfig(env);
  const name = contextName ?? config['current-context'];
  let context: Context | undefined;
  if (name !== undefined) {
    context = config.contexts[name];
    if (context === undefined && contextName !== undefined) {
      throw usage(
        `no context "${contextName}" in ${configPath(env)} (known: ${Object.keys(config.contexts).join(', ') || 'none'})`,
      );
    }
  }
  const url = env['CONSORT_URL'] ?? context?.url;
  if (url === undefined) {
    throw new CliError(
      'no server: set CONSORT_URL (and CONSORT_TOKEN), or add a context with `consort context set NAME --url URL --token TOKEN`',
      EXIT.usage,
    );
  }
  return {
    url: url.replace(/\/+$/, ''),
    token: env['CONSORT_TOKEN'] ?? context?.token,
    source: env['CONSORT_URL'] !== undefined ? 'CONSORT_URL' : `context ${name ?? ''}`,
  };
}
