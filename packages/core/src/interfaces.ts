/** Helpers for the `interfaces` map list (keyed by `name`) that several host providers read and fill in. */
import type { Attrs, JsonValue } from './model.js';
import { isJsonObject } from './model.js';
import { parsePath } from './paths.js';

/** The item of a node's `interfaces` list named `name`, or undefined. */
export function interfaceOf(node: Attrs, name: string): Attrs | undefined {
  const list = node['interfaces'];
  if (!Array.isArray(list)) return undefined;
  return (list as readonly JsonValue[]).filter(isJsonObject).find((item) => item['name'] === name);
}

/** The interface name of a path `interfaces[<name>].<field>`, or undefined for any other path. */
export function interfaceFieldOf(path: string, field: string): string | undefined {
  const [attribute, item, leaf, ...rest] = parsePath(path);
  if (attribute === undefined || !('prop' in attribute) || attribute.prop !== 'interfaces') return undefined;
  if (
    item === undefined ||
    !('key' in item) ||
    leaf === undefined ||
    !('prop' in leaf) ||
    leaf.prop !== field
  ) {
    return undefined;
  }
  return rest.length === 0 ? item.key : undefined;
}
