// Validates rendered manifests (multi-document YAML on stdin) against the
// Kubernetes schemas of the kubernetes-models package. Exit 1 on any error.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const docs = yaml.loadAll(readFileSync(0, "utf8")).filter(Boolean);
const groups = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
};
let errors = 0, checked = 0, skipped = [];
for (const doc of docs) {
  const mod = groups[doc.apiVersion];
  if (!mod) { skipped.push(`${doc.apiVersion} ${doc.kind}`); continue; }
  const models = await import(mod);
  const Model = models[doc.kind];
  if (!Model) { console.error(`unknown kind ${doc.apiVersion} ${doc.kind}`); errors++; continue; }
  try {
    new Model(doc).validate();
    checked++;
  } catch (e) {
    console.error(`${doc.kind} ${doc.metadata?.name}: ${e.message}`);
    errors++;
  }
}
console.log(`validated ${checked} manifests` + (skipped.length ? `, skipped (CRDs): ${skipped.join(", ")}` : ""));
process.exit(errors ? 1 : 0);
