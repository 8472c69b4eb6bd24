/** Runs the benchmarks named on the command line (all when none): `pnpm bench [planner ...]`. */
import { clusterBench } from './cluster.js';
import { consoleBench } from './console.js';
import { provisionBench } from './provision.js';
import { consortStartupBench } from './consort-startup.js';
import { httpBench } from './http.js';
import { inventoryBench } from './inventory.js';
import { plannerBench } from './planner.js';
import { sseBench } from './sse.js';
import { storeBench } from './store.js';

const benches: Record<string, () => Promise<void>> = {
  planner: plannerBench,
  http: httpBench,
  consort: consortStartupBench,
  cluster: clusterBench,
  provision: provisionBench,
  store: storeBench,
  console: consoleBench,
  inventory: inventoryBench,
  sse: sseBench,
};
const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(benches)) {
  const bench = benches[name];
  if (bench === undefined) {
    console.error(`unknown benchmark "${name}" (known: ${Object.keys(benches).join(', ')})`);
    process.exit(2);
  }
  await bench();
}
