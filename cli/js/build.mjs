// Run by `wasm-host build-js` with the pinned componentize-js: node build.mjs ENTRY.js WIT_DIR OUT.wasm
import { writeFileSync } from 'node:fs';
import { componentize } from '@bytecodealliance/componentize-js';

const [sourcePath, witPath, outPath] = process.argv.slice(2);
try {
  const { component } = await componentize({ sourcePath, witPath, worldName: 'function' });
  writeFileSync(outPath, component);
} catch (e) {
  // The first lines say what went wrong (a JavaScript exception while the module was evaluated, say).
  console.error(String(e?.message ?? e).split('\n').slice(0, 12).join('\n'));
  process.exit(1);
}
