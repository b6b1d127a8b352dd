// Renames the wasm's imports and exports in its JavaScript glue as `wasm-opt
// --minify-imports-and-exports-and-modules` renamed them in the wasm (its printed map).
//   node wasm-names.mjs MAP.json RENAMED.wasm GLUE.js
// Every name is checked: an import missing from the glue, a name left behind or a module the
// renamed wasm does not ask for stops the build.
import { readFileSync, writeFileSync } from "node:fs";

const [mapFile, wasmFile, glueFile] = process.argv.slice(2);
const map = JSON.parse(readFileSync(mapFile, "utf8"));
const wanted = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(wasmFile)));
let glue = readFileSync(glueFile, "utf8");
const fail = (why) => {
  console.error(`wasm-names: ${why}`);
  process.exit(1);
};
const count = (re) => (glue.match(re) ?? []).length;

const modules = new Set(wanted.map((i) => i.module));
if (modules.size !== 1) fail(`expected one import module, the wasm asks for ${[...modules].join(", ")}`);
const [module] = modules;
for (const old of new Set(map.imports.map(([m]) => m))) {
  const literal = JSON.stringify(old);
  const key = new RegExp(`${literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=\\s*:)`, "g");
  if (count(key) !== 1) fail(`module ${literal} is not in the glue once`);
  glue = glue.replace(key, JSON.stringify(module));
}
for (const [, old, name] of map.imports) {
  const key = new RegExp(`\\b${old}(?=\\s*:)`, "g");
  if (count(key) !== 1) fail(`import ${old} is not in the glue once`);
  glue = glue.replace(key, JSON.stringify(name));
}
for (const [old, name] of map.exports) {
  glue = glue.replace(new RegExp(`\\bwasm\\.${old}\\b`, "g"), `wasm[${JSON.stringify(name)}]`);
}
for (const [, old] of map.imports) if (glue.includes(old)) fail(`${old} is still in the glue`);
const keys = new Set(map.imports.map(([, , name]) => name));
for (const i of wanted) if (!keys.has(i.name)) fail(`the wasm imports ${i.name}, which the map does not name`);
writeFileSync(glueFile, glue);
