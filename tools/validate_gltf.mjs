// Validate a glTF/GLB file with the Khronos glTF-Validator; print its JSON report on stdout.
// Usage: node tools/validate_gltf.mjs FILE   (photoforge.gltf_validation runs it)
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const validator = require("./node_modules/gltf-validator");

const path = process.argv[2];
const data = await readFile(path);
const report = await validator.validateBytes(new Uint8Array(data), {
  uri: path,
  maxIssues: 200,
  externalResourceFunction: (uri) =>
    readFile(new URL(uri, "file://" + path)).then((buf) => new Uint8Array(buf)),
});
console.log(JSON.stringify(report));
