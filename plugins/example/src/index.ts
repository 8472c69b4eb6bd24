/**
 * @consortium/plugin-example: the plugin guide's example (docs/plugin-guide.md). One provider, `labels`, owns the
 * host attribute `label` and keeps it in a directory as one file per host, `<directory>/<host>.label`, holding the
 * label and the host's `hostname` (which it watches). The directory is its backend: it reads before it writes, so a
 * task that runs again writes nothing; explain reads only; delete removes the file; a missing directory (an
 * unmounted share) is a retryable fault.
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonSchema, NodeProvider, TaskRun } from '@consortium/plugin-api';
import {
  BackendError,
  BackendUnavailableError,
  decisionProvider,
  definePlugin,
} from '@consortium/plugin-api';

/** The example plugin's config. */
export interface ExampleConfig {
  /** The directory that holds the label files; it must exist (it stands for a share that may be unmounted). */
  readonly directory: string;
}

const configSchema: JsonSchema = {
  type: 'object',
  properties: { directory: { type: 'string', minLength: 1, description: 'where the label files live' } },
  required: ['directory'],
  additionalProperties: false,
};

/** Translates a file system error at the edge: a missing directory may come back, anything else is permanent. */
function backendError(error: unknown, directory: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new BackendUnavailableError(`label directory ${directory} is missing (unmounted?)`);
  return new BackendError(`label directory ${directory}: ${(error as Error).message}`, { cause: error });
}

/** The labels provider over one directory. */
export function labelsProvider(directory: string): NodeProvider {
  const fileOf = (host: string): string => join(directory, `${host}.label`);

  /** The file's content, or null when there is none; throws when the directory itself is gone. */
  async function read(host: string): Promise<string | null> {
    await stat(directory).catch((error: unknown) => {
      throw backendError(error, directory);
    });
    return readFile(fileOf(host), 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw backendError(error, directory);
    });
  }

  async function decide(run: TaskRun): Promise<void> {
    const { task, out } = run;
    const existing = await read(task.name);
    const target = `label/${task.name}`;

    if (task.node['present'] === undefined) {
      // The host is being deleted: every update is a sync saying so. Remove the file if it is there.
      if (existing !== null)
        await run.operation({ action: 'remove', target }, 'removed the label file', () =>
          rm(fileOf(task.name)),
        );
      if (task.node['label'] !== undefined) out.unset.push('label');
      out.accept(...task.updates);
      return;
    }

    const labelUpdate = task.updates.find((u) => u.path === 'label');
    for (const update of task.updates) {
      if (update.op === 'sync')
        out.accept(update); // hostname changed: the file is rewritten below if needed
      else if (update !== labelUpdate) out.reject(`labels does not provide ${update.path}`, update);
    }
    if (labelUpdate !== undefined && labelUpdate.op !== 'set' && labelUpdate.op !== 'unset') {
      out.reject(`label takes set or unset, not ${labelUpdate.op}`, labelUpdate);
      return;
    }
    const value = labelUpdate === undefined ? task.node['label'] : labelUpdate.value;
    const label = typeof value === 'string' ? value : undefined;
    const hostname = task.node['hostname'];
    if (label !== undefined && typeof hostname !== 'string') {
      // The file names the hostname too: wait until another provider (inventory) has it.
      out.defer('waiting for hostname', ['hostname'], labelUpdate);
      return;
    }
    const wanted = label === undefined || typeof hostname !== 'string' ? null : `${label}\n${hostname}\n`;
    if (wanted !== existing) {
      // Only a difference is written, so the same task again writes nothing.
      if (wanted === null)
        await run.operation({ action: 'remove', target }, 'removed the label file', () =>
          rm(fileOf(task.name)),
        );
      else
        await run.operation({ action: 'write', target }, `label "${label ?? ''}"`, () =>
          writeFile(fileOf(task.name), wanted),
        );
    }
    out.accept(labelUpdate);
  }

  return decisionProvider(
    {
      name: 'labels',
      kind: 'host',
      claims: [
        {
          path: 'label',
          schema: { type: 'string', minLength: 1, maxLength: 64, description: 'the rack label' },
        },
      ],
      watches: ['hostname'],
      observe: async (ref) => {
        const content = ref.kind === 'host' ? await read(ref.name) : null;
        return content === null ? null : { label: content.split('\n')[0] ?? '' };
      },
    },
    decide,
  );
}

/** The example plugin: one `labels` provider over the configured directory. */
export const plugin = definePlugin<ExampleConfig>({
  id: 'example',
  configSchema,
  providers: (config) => [labelsProvider(config.directory)],
});
