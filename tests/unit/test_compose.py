"""compose.yaml from a Plan: GPU reservations, run flags, the YAML emitter, never overwriting."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dlbox.apps.files import write_compose
from dlbox.errors import HostError
from dlbox.host import EngineFacts, Host, Limits, NetFacts
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.plan import resolve
from dlbox.render.compose import compose_dict, gpu_devices, merge_compose, render_compose, to_yaml
from dlbox.spec import load_spec
from dlbox.workflow import Project

TOML = """
name = "demo"
[env]
python = "3.11"
torch = "auto"
[run]
gpus = "{gpus}"
shm = "{shm}"
ports = ["7860", "9000:80"]
mounts = ["{data}:/data:ro"]
env = {{ GREETING = "costs $5" }}
command = ["python", "app.py"]
"""

GPU_HOST = Host(driver=facts_from_options(nvidia_smi_text=None, driver="565.57.01", compute_caps=["8.6"]),
                engine=EngineFacts(runtimes=("nvidia", "runc")), uid=1234, gid=1235)
CPU_HOST = Host(uid=1234, gid=1235, limits=Limits(memlock_hard=8 * 2**20))


def project(tmp_path: Path, host: Host = GPU_HOST, gpus: str = "auto", shm: str = "host") -> Project:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "dlbox.toml").write_text(TOML.format(gpus=gpus, shm=shm, data=tmp_path / "data"))
    spec = load_spec(tmp_path)
    return Project(spec, host, resolve(spec, host), None)


def test_gpu_service(tmp_path):
    d = compose_dict(project(tmp_path).plan, image="dlbox/demo:abc")
    svc = d["services"]["demo"]
    assert svc["deploy"] == {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}}
    assert svc["image"] == "dlbox/demo:abc"
    assert svc["build"] == {"context": ".", "dockerfile": ".dlbox/Dockerfile"}
    assert svc["ipc"] == "host" and "shm_size" not in svc
    assert svc["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert svc["ports"] == ["127.0.0.1:7860:7860", "127.0.0.1:9000:80"]
    assert svc["volumes"] == [".:/workspace", f"{tmp_path / 'data'}:/data:ro",
                              {"type": "tmpfs", "target": "/workspace/.dlbox", "read_only": True}]
    assert svc["security_opt"] == ["no-new-privileges"] and svc["cap_drop"] == ["ALL"]
    assert svc["environment"] == {"GREETING": "costs $$5"}      # compose would interpolate $5
    assert svc["user"] == "1234:1235" and svc["working_dir"] == "/workspace"
    assert svc["extra_hosts"] == ["host.docker.internal:host-gateway"]
    assert svc["command"] == ["python", "app.py"]


def test_cpu_service_has_no_gpu_and_no_memlock(tmp_path):
    svc = compose_dict(project(tmp_path, CPU_HOST, shm="16g").plan, image="x")["services"]["demo"]
    assert "deploy" not in svc
    assert svc["shm_size"] == "16g" and "ipc" not in svc
    assert svc["ulimits"] == {"stack": 67108864}


@pytest.mark.parametrize("args,expected", [
    ((), []),
    (("--gpus", "all"), [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]),
    (("--gpus", "2"), [{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}]),
    (("--gpus", '"device=0,2"'), [{"driver": "nvidia", "device_ids": ["0", "2"], "capabilities": ["gpu"]}]),
    (("--device", "nvidia.com/gpu=all"), [{"driver": "cdi", "device_ids": ["nvidia.com/gpu=all"],
                                           "capabilities": ["gpu"]}]),
])
def test_gpu_devices(args, expected):
    assert gpu_devices(args) == expected


def test_gpu_ids_from_the_spec(tmp_path):
    svc = compose_dict(project(tmp_path, gpus="0,2").plan, image="x")["services"]["demo"]
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "2"]


def test_proxy_password_is_left_to_the_shell(tmp_path):
    host = replace(CPU_HOST, net=NetFacts(http_proxy="http://bob:s3cret@proxy.example:3128"))
    text = render_compose(project(tmp_path, host).plan, image="x")
    assert "s3cret" not in text and '"${HTTP_PROXY}"' in text


def test_emitter_output_is_exact_and_quotes_every_string():
    d = {"services": {"a": {"ports": ["127.0.0.1:22:22"], "num": 1, "on": True, "x": None, "e": [],
                            "devices": [{"driver": "nvidia", "count": "all"}], "s": 'say "hi"\n\u00e9'}}}
    assert to_yaml(d) == (
        'services:\n'
        '  a:\n'
        '    ports:\n'
        '      - "127.0.0.1:22:22"\n'
        '    num: 1\n'
        '    "on": true\n'
        '    x: null\n'
        '    e: []\n'
        '    devices:\n'
        '      - driver: "nvidia"\n'
        '        count: "all"\n'
        '    s: "say \\"hi\\"\\n\\u00e9"\n')


def test_every_string_scalar_reads_back_as_json():
    # YAML double-quoted scalars with JSON escapes mean the same string: check the emitted forms
    for s in ['a:b', 'yes', '0755', '1:30', '#x', 'tab\there', '${HTTP_PROXY}', "quote'"]:
        line = to_yaml({"k": s})
        assert json.loads(line.split(": ", 1)[1]) == s


def test_emitter_refuses_what_it_cannot_write():
    with pytest.raises(TypeError):
        to_yaml({"k": 1.5})


def test_write_merges_a_users_file_and_rewrites_its_own(tmp_path):
    p = project(tmp_path, CPU_HOST)
    w = write_compose(p)
    assert w.action == "created"
    path = tmp_path / "compose.yaml"
    assert path.read_text().startswith("# Generated by dlbox")
    assert write_compose(p).action == "unchanged"
    path.write_text("# my stack\nservices:\n  mine: {image: redis}  # cache\n  demo:\n    shm_size: 1g\n"
                    "    restart: always\n    ports: ['1:30']\nvolumes:\n  data: {}\n")
    merged = write_compose(p)
    assert merged.action == "merged" and merged.backup.read_text().startswith("# my stack")
    text = path.read_text()
    assert "# my stack" in text and "# cache" in text, "the user's comments survive"
    doc = YAML(typ="safe").load(text)
    ours = compose_dict(p.plan, image=doc["services"]["demo"]["image"])["services"]["demo"]
    svc = doc["services"]["demo"]
    assert doc["services"]["mine"] == {"image": "redis"} and doc["volumes"] == {"data": {}}
    assert svc["restart"] == "always", "keys only the user set are kept"
    assert "shm_size" not in svc and svc["ipc"] == ours["ipc"] == "host", "ours decides ipc vs shm_size"
    assert {k: svc[k] for k in ours} == ours, "our keys are ours, read back by a YAML parser"
    forced = write_compose(p, force=True)
    assert forced.action == "replaced" and path.read_text().startswith("# Generated by dlbox")


def test_a_file_that_is_not_a_compose_mapping_is_a_clear_error(tmp_path):
    p = project(tmp_path, CPU_HOST)
    (tmp_path / "compose.yaml").write_text("- just\n- a list\n")
    with pytest.raises(HostError, match="cannot merge") as exc:
        write_compose(p)
    assert "--force" in exc.value.fix


def test_compose_output_reads_back_with_a_yaml_parser(tmp_path):
    p = project(tmp_path)
    text = render_compose(p.plan, image="img:1", ca_bundle="/x/ca.pem")
    ours = compose_dict(p.plan, image="img:1", ca_bundle="/x/ca.pem")
    assert YAML(typ="safe").load(text) == ours
    assert YAML(typ="safe").load(merge_compose("", ours)) == ours


@settings(deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12), max_size=4))
def test_any_env_reads_back_the_same_from_both_writers(env):
    d = {"services": {"demo": {"environment": env, "command": ["yes", "on", "1:30"]}}}
    assert YAML(typ="safe").load(to_yaml(d)) == d
    assert YAML(typ="safe").load(merge_compose("services: {}\n", d)) == d