"""Rendered Kubernetes manifests, validated offline for two cluster versions (strict), and a broken
variant of each kind rejected with a line naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from dlbox.k8s.kubectl import host_from_gfd, parse_api_resources, parse_gfd_nodes
from dlbox.k8s.render import KINDS, K8sError, K8sJob, render, to_yaml
from dlbox.k8s.validate import DEFAULT_VERSIONS, crd_schemas, normalize_version, validate

JOB = K8sJob(name="digits-ddp", image="registry.example/dlbox/digits:abc", nodes=2, gpus_per_node=8,
             command=("python", "train_ddp.py", "--epochs", "3"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", DEFAULT_VERSIONS)
def test_every_kind_is_valid(kind, version):
    docs = yaml.safe_load_all(to_yaml(render(JOB, kind)))   # what the user gets, read back as YAML
    assert validate(list(docs), (version,)) == []


def pod_specs(doc: dict) -> list[dict]:
    found = []

    def walk(x):
        if isinstance(x, dict):
            if "containers" in x and "restartPolicy" in x:
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    return found


@pytest.mark.parametrize("kind", ["jobset", "job", "pytorchjob"])
def test_gpus_shm_security_and_rendezvous(kind):
    docs = render(JOB, kind)
    text = json.dumps(docs)
    for pod in pod_specs(docs[-1]):
        c = pod["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
        assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
        assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    if kind == "jobset":
        assert "--rdzv-endpoint=digits-ddp-node-0-0.digits-ddp:29500" in text
    if kind == "job":
        assert docs[0]["kind"] == "Service" and docs[0]["spec"]["clusterIP"] == "None"
        assert "--rdzv-endpoint=digits-ddp-0.digits-ddp:29500" in text


def broken(kind: str) -> list[dict]:
    docs = copy.deepcopy(render(JOB, kind))
    d = docs[-1]
    if kind == "jobset":
        d["spec"]["replicatedJobs"][0]["replicas"] = "1"             # a string where an integer goes
    elif kind == "job":
        d["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []   # typo of volumeMounts
    elif kind == "trainjob":
        d["spec"]["trainer"]["numNode"] = d["spec"]["trainer"].pop("numNodes")
        d["spec"]["podTemplateOverrides"] = []                       # the v2.1 name, gone in v2.2
    elif kind == "pytorchjob":
        d["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "nvidia.com/gpu"] = [8]                                   # a list where a quantity goes
    return docs


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_variant_of_each_kind_is_rejected_naming_the_field(kind):
    problems = validate(broken(kind))
    assert problems, kind
    line = problems[0].line()
    assert line.startswith(("JobSet digits-ddp.spec.replicatedJobs[0].replicas", "Job digits-ddp.spec.template",
                            "TrainJob digits-ddp.spec", "PyTorchJob digits-ddp.spec.pytorchReplicaSpecs.Master")), line


def test_version_matters_for_builtin_kinds():
    # podFailurePolicy rules needed onPodConditions in 1.25 (made optional later): validate for the cluster's own version
    job = render(JOB, "job")
    assert validate(job, ("1.25.0",)) and not validate(job, ("1.30.0",))


def test_crd_schemas_carry_their_sources():
    for (api, kind), (_schema, against) in crd_schemas().items():
        assert "@" in against and len(against.split("@")[1]) == 10, against


@pytest.mark.parametrize("bad,message", [
    (dict(name="Digits_DDP"), "is not a DNS label"),
    (dict(nodes=0), "at least 1"),
    (dict(shm="lots"), "--shm 'lots' is not a Kubernetes quantity"),
    (dict(uid=0), "would run as root"),
])
def test_bad_input_is_one_line_naming_the_field(bad, message):
    kw = {**JOB.__dict__, **bad}
    with pytest.raises(K8sError, match=message):
        render(K8sJob(**kw), "jobset")
    with pytest.raises(K8sError, match="--kind 'jobsets' is not one of"):
        render(JOB, "jobsets")
    with pytest.raises(K8sError, match="no schemas for Kubernetes 1.12.0"):
        normalize_version("v1.12.3")
    assert normalize_version("v1.30.4-gke.100") == "1.30.0"


def test_api_resources_and_gpu_feature_discovery_labels():
    """GFD labels recorded from two real clusters (tests/fixtures/gfd/SOURCES.md) → the cluster's Host."""
    assert parse_api_resources("jobs.batch\njobsets.jobset.x-k8s.io\npods\n") == ("job", "jobset")
    gfd = Path(__file__).resolve().parent.parent / "fixtures" / "gfd"
    t4 = yaml.safe_load((gfd / "openshift-t4-450.80.02.yaml").read_text())
    rke2 = json.loads((gfd / "rke2-940mx-550.120.json").read_text())
    nodes = {"items": [{"metadata": {"name": "worker03", "labels": t4}},
                       {"metadata": {"name": "rke2-gpu", "labels": rke2}},
                       {"metadata": {"name": "cpu-1", "labels": {"kubernetes.io/os": "linux"}}}]}
    parsed = parse_gfd_nodes(json.dumps(nodes))
    assert [(n["name"], n["driver"], n["compute_cap"]) for n in parsed] == [
        ("worker03", "450.80.02", "7.5"), ("rke2-gpu", "550.120", "5.0")]
    host = host_from_gfd(parsed)
    assert host.driver.driver_version == "450.80.02" and "worker03" in host.driver.source
    assert {g.compute_cap for g in host.driver.gpus} == {"7.5", "5.0"}
    assert host.driver.cuda_max and host.driver.cuda_max.startswith("11.")


def test_cli_render_then_validate_and_a_broken_file(tmp_path):
    """`dlbox k8s render` prints valid YAML; `dlbox k8s validate` names the bad field in one line."""
    import os
    import subprocess
    import sys

    exe = [sys.executable, "-m", "dlbox.cli"]
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "none"), PATH="/usr/bin:/bin")   # no cluster reachable
    proc = subprocess.run(exe + ["k8s", "render", "-N", "2", "-G", "1", "--kind", "job", "--image", "reg/x:1",
                                 "--k8s-version", "1.29", "--", "python", "train.py"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    good = tmp_path / "job.yaml"
    good.write_text(proc.stdout)
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["kind"] for d in docs] == ["Service", "Job"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(proc.stdout.replace("completions: 2", "completions: '2'"))
    ok = subprocess.run(exe + ["k8s", "validate", str(good)], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "valid" in ok.stdout
    no = subprocess.run(exe + ["k8s", "validate", str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert no.returncode == 1 and "Job dlbox-" in no.stderr and "spec.completions" in no.stderr, no.stderr
    assert "Traceback" not in no.stderr
