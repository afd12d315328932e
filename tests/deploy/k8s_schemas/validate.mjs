// Validate every document of a directory of Kubernetes manifests against
// the Kubernetes API's OpenAPI schemas (kubernetes-models: types, required
// fields, enumerations, formats), an independent reading of deploy/k8s.
//     node validate.mjs DIR      (from a directory with its node_modules)
import fs from "fs";
import path from "path";
import yaml from "js-yaml";

const dir = process.argv[2];
const groups = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "batch/v1": "kubernetes-models/batch/v1",
};
let bad = 0;
let seen = 0;
for (const file of fs.readdirSync(dir).sort()) {
  if (!file.endsWith(".yaml") || file === "kustomization.yaml") continue;
  for (const doc of yaml.loadAll(fs.readFileSync(path.join(dir, file), "utf8"))) {
    if (!doc) continue;
    seen++;
    const what = `${file}: ${doc.apiVersion}/${doc.kind} ${doc.metadata && doc.metadata.name}`;
    const group = groups[doc.apiVersion];
    const Model = group ? (await import(group))[doc.kind] : undefined;
    if (!Model) {
      console.log(`FAIL ${what}: no schema known for it`);
      bad++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`ok   ${what}`);
    } catch (e) {
      console.log(`FAIL ${what}: ${e.message}`);
      bad++;
    }
  }
}
if (seen === 0) {
  console.log(`FAIL no manifest in ${dir}`);
  bad++;
}
process.exit(bad ? 1 : 0);
