// The licence texts of what the viewer bundle holds, beside it (viewer/dist/LICENSES.txt): the report's
// viewer/ folder carries them with the bundle, as their MIT licences ask.
import { readFileSync, writeFileSync } from "node:fs";

const bundled = ["three", "@sparkjsdev/spark", "fflate"];  // fflate: inside Spark
const text = bundled.map((name) => {
  const version = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
  return `${name} ${version}\n\n${readFileSync(`node_modules/${name}/LICENSE`, "utf8").trim()}\n`;
}).join("\n---\n\n");
writeFileSync("viewer/dist/LICENSES.txt", text);
