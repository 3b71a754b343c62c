// Turn one JavaScript plugin into a WebAssembly component with componentize-js.
//
//     node componentize.mjs SOURCE.js WIT_DIR WORLD OUT.wasm
//
// `warden build` writes this file next to the node_modules it installed and runs it there.
// It calls componentize-js's API rather than the jco CLI, whose `componentize` command fails on
// some machines ("failed to get path metadata ... os error 44", jco 1.35).
//
// `fetch-event` is disabled: it would export `wasi:http/incoming-handler`, which is for HTTP
// servers, and warden makes every exported function a tool. `http` (outbound `fetch()`),
// `stdio` (console output, captured by warden), `random` and `clocks` stay.

import { writeFile } from 'node:fs/promises';
import { componentize } from '@bytecodealliance/componentize-js';

const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node componentize.mjs SOURCE.js WIT_DIR WORLD OUT.wasm');
  process.exit(2);
}

const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  disableFeatures: ['fetch-event'],
});
await writeFile(out, component);
