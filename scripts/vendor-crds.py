"""Regenerate src/dlbox/k8s/schemas/*.json from upstream CRDs (a maintainer's tool, not run by tests).

    python scripts/vendor-crds.py MIRROR_DIR

MIRROR_DIR holds git mirrors named OWNER+NAME/repo (as the `fetch` tool makes them). Each CRD
version's openAPIV3Schema becomes a strict JSON Schema, the same conversion as kubeconform's
openapi2jsonschema: unknown fields are rejected unless the schema says
x-kubernetes-preserve-unknown-fields, int-or-string and nullable are honoured, CEL rules
(x-kubernetes-validations) and descriptions are dropped (they are server-side only).
The source repository, path, tag and commit go into SOURCES.json next to the schemas.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "src" / "dlbox" / "k8s" / "schemas"
CRDS = [  # (repo, ref, path, versions kept)
    ("kubernetes-sigs/jobset", "v0.12.0", "config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml", ["v1alpha2"]),
    ("kubeflow/trainer", "v2.3.0", "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml", ["v1alpha1"]),
    ("kubeflow/trainer", "release-1.9", "manifests/base/crds/kubeflow.org_pytorchjobs.yaml", ["v1"]),
]
DROP = {"x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type", "x-kubernetes-embedded-resource", "description", "format"}


def strict(s):
    if isinstance(s, list):
        return [strict(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in DROP:
            continue
        if k == "properties":
            out[k] = {pk: strict(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = strict(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = strict(v)
        else:
            out[k] = v
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}] + out.get("anyOf", [])
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def main() -> None:
    mirrors = Path(sys.argv[1])
    sources = {}
    for repo, ref, path, keep in CRDS:
        git = mirrors / repo.replace("/", "+") / "repo"
        commit = subprocess.run(["git", "-C", str(git), "rev-parse", f"{ref}^{{commit}}"], capture_output=True,
                                text=True, check=True).stdout.strip()
        crd = yaml.safe_load(subprocess.run(["git", "-C", str(git), "show", f"{commit}:{path}"], capture_output=True,
                                            text=True, check=True).stdout)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v["name"] not in keep:
                continue
            schema = strict(v["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            name = f"{kind.lower()}-{group}-{v['name']}.json"
            (OUT / name).write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
            sources[name] = {"apiVersion": f"{group}/{v['name']}", "kind": kind, "repository": f"https://github.com/{repo}",
                             "ref": ref, "commit": commit, "path": path}
            print(name, (OUT / name).stat().st_size)
    (OUT / "SOURCES.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
