/**
 * A benchmark plugin: kind `hold`, whose one provider takes `holdMs` (config) per task, so that a job stays
 * running long enough for event-stream clients to watch it.
 */
import type { NodeProvider, ProviderContext, ProviderTask } from '@consortium/plugin-api';
import { definePlugin } from '@consortium/plugin-api';

const holding = (holdMs: number): NodeProvider => {
  const accept = async (task: ProviderTask, context: ProviderContext) => {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        context.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, holdMs);
      context.signal.addEventListener('abort', done);
    });
    return {
      accepted: task.updates.map((u) => u.id),
      operations: [{ action: 'hold', target: task.name, durationMs: holdMs }],
    };
  };
  return {
    name: 'hold',
    kind: 'hold',
    claims: [{ path: 'a', schema: { type: 'string' } }],
    apply: accept,
    explain: (task) => Promise.resolve({ accepted: task.updates.map((u) => u.id) }),
  };
};

/** The plugin. */
export const plugin = definePlugin<{ holdMs?: number }>({
  id: 'bench-hold',
  configSchema: {
    type: 'object',
    properties: { holdMs: { type: 'integer', minimum: 0 } },
    additionalProperties: false,
  },
  kinds: [{ name: 'hold', description: 'benchmark only' }],
  providers: (config) => [holding(config.holdMs ?? 250)],
});
