/**
 * The inventory provider of one kind. Its backend is Consortium's own store, which the master writes with the
 * merged node after every job, so accepting an update is all there is to do: apply and explain decide alike.
 */
import type {
  AttributeClaim,
  ExplainOutcome,
  JsonSchema,
  NodeProvider,
  Operation,
  ProviderTask,
} from '@consortium/plugin-api';

/** The name of every inventory provider (one per kind). */
export const INVENTORY_PROVIDER = 'inventory';

function decide(task: ProviderTask): ExplainOutcome {
  const target = `${task.kind}/${task.name}`;
  const removing = task.node['present'] === undefined;
  const operations: Operation[] = task.updates.map((update) =>
    removing
      ? { action: 'remove', target, detail: 'the record goes with the node' }
      : { action: 'record', target, detail: update.path },
  );
  return { accepted: task.updates.map((update) => update.id), operations };
}

/** Makes the inventory provider of `kind` with authority over the given attributes. */
export function recordProvider(kind: string, attributes: Readonly<Record<string, JsonSchema>>): NodeProvider {
  const claims: AttributeClaim[] = Object.entries(attributes).map(([path, schema]) => ({ path, schema }));
  return {
    name: INVENTORY_PROVIDER,
    kind,
    claims,
    apply: (task) => Promise.resolve(decide(task)),
    explain: (task) => Promise.resolve(decide(task)),
  };
}
