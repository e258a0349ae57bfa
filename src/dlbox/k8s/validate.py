"""Offline validation of rendered manifests, strict about unknown fields.

- Built-in kinds (Job, Service): the JSON schemas bundled in `kubernetes-validate` (PyPI) for the
  cluster's own version, strict variant (a non-strict check passes a `volumeMount` typo).
- JobSet, TrainJob, PyTorchJob: JSON schemas converted from the upstream CRDs, vendored in
  `schemas/` with their repository, tag and commit (SOURCES.json; made by scripts/vendor-crds.py).
What offline validation cannot see: CEL rules (x-kubernetes-validations), admission webhooks,
defaulting, and whether the CRD is installed at all (`dlbox k8s probe` asks the cluster).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from dlbox.k8s.render import K8sError

SCHEMAS = Path(__file__).parent / "schemas"
DEFAULT_VERSIONS = ("1.30.0", "1.37.0")   # oldest and newest minor dlbox is tested against


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    path: str
    message: str
    against: str

    def line(self) -> str:
        where = f".{self.path}" if self.path else ""
        return f"{self.kind} {self.name}{where}: {self.message} ({self.against})"


@functools.lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], tuple[dict, str]]:
    sources = json.loads((SCHEMAS / "SOURCES.json").read_text())
    out = {}
    for file, src in sources.items():
        schema = json.loads((SCHEMAS / file).read_text())
        out[(src["apiVersion"], src["kind"])] = (schema, f"{src['kind']} CRD {src['ref']}@{src['commit'][:10]}")
    return out


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def validate(docs: list[dict], versions: tuple[str, ...] = DEFAULT_VERSIONS) -> list[Problem]:
    """Every problem of every document, against every Kubernetes version asked for."""
    import jsonschema

    problems: list[Problem] = []
    for doc in docs:
        kind, name = str(doc.get("kind")), str((doc.get("metadata") or {}).get("name"))
        key = (doc.get("apiVersion"), doc.get("kind"))
        crd = crd_schemas().get(key)
        if crd:
            schema, against = crd
            for e in sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)):
                problems.append(Problem(kind, name, _path(e.absolute_path), _short(e.message), against))
            continue
        for v in versions:
            problems += _builtin(doc, kind, name, v)
    return problems


def _builtin(doc: dict, kind: str, name: str, version: str) -> list[Problem]:
    import kubernetes_validate

    against = f"Kubernetes {version}"
    try:
        kubernetes_validate.validate(doc, version, strict=True)
        return []
    except kubernetes_validate.ValidationError as e:
        return [Problem(kind, name, _path(e.path), _short(e.message), against)]
    except kubernetes_validate.SchemaNotFoundError:
        return [Problem(kind, name, "", f"{doc.get('apiVersion')} {kind} does not exist in this version", against)]
    except kubernetes_validate.InvalidSchemaError as e:  # pragma: no cover - a broken bundled schema
        return [Problem(kind, name, "", f"schema error: {e}", against)]


def _short(msg: str) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= 200 else msg[:197] + "..."


def supported_versions() -> list[str]:
    import os

    import kubernetes_validate

    d = Path(os.path.dirname(kubernetes_validate.__file__)) / "kubernetes-json-schema"
    return sorted((p.name[1:].removesuffix("-local-strict") for p in d.glob("v*-local-strict")),
                  key=lambda v: tuple(int(x) for x in v.split(".")))


def normalize_version(text: str) -> str:
    """'1.29', 'v1.29.3', '1.29.3-gke.100' → '1.29.0' (schemas exist per minor)."""
    import re

    m = re.match(r"^v?(\d+)\.(\d+)", text.strip())
    if not m:
        raise K8sError(f"{text!r} is not a Kubernetes version", fix="e.g. --k8s-version 1.30")
    v = f"{m.group(1)}.{m.group(2)}.0"
    have = supported_versions()
    if v not in have:
        raise K8sError(f"no schemas for Kubernetes {v} in kubernetes-validate (it has {have[0]} to {have[-1]})",
                       fix=f"--k8s-version {have[0]} ... {have[-1]}, or upgrade kubernetes-validate")
    return v
