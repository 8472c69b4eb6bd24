/** A benchmark plugin: kind `noop` with two providers that accept at once, to time Consortium's own overhead. */
import type { NodeProvider, ProviderTask } from '@consortium/plugin-api';
import { definePlugin } from '@consortium/plugin-api';

const instant = (name: string, path: string): NodeProvider => {
  const accept = (task: ProviderTask) =>
    Promise.resolve({
      accepted: task.updates.map((u) => u.id),
      operations: [{ action: 'noop', target: task.name, durationMs: 0 }],
    });
  return {
    name,
    kind: 'noop',
    claims: [{ path, schema: { type: 'string' } }],
    apply: accept,
    explain: accept,
  };
};

/** The plugin. */
export const plugin = definePlugin({
  id: 'bench-noop',
  configSchema: { type: 'object', additionalProperties: false },
  kinds: [{ name: 'noop', description: 'benchmark only' }],
  providers: () => [instant('first', 'a'), instant('second', 'b')],
});
