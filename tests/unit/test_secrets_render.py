"""Secrets in what dlbox renders and prints: names only, values never (issue 11, items 5-7)."""

from __future__ import annotations

import json
from pathlib import Path

from dlbox.host import Host, Limits, NetFacts
from dlbox.plan import resolve
from dlbox.render.compose import compose_dict
from dlbox.render.devcontainer import devcontainer_dict
from dlbox.render.dockerfile import index_secrets, labels, render_dockerfile
from dlbox.spec import load_spec

TOKEN = "tok987654321"
HOST = Host(driver=None, limits=Limits(None, None), uid=1000, gid=1000,
            net=NetFacts(pip_index=f"https://__token__:{TOKEN}@pypi.example/simple"))


def _plan(tmp_path: Path, text: str):
    (tmp_path / "dlbox.toml").write_text(text)
    spec = load_spec(tmp_path)
    return spec, resolve(spec, HOST)


SPEC = """[run]
env = {MY_SETTING = "value-in-env-0042"}
[run.secrets]
HF_TOKEN = "env"
WANDB_API_KEY = "file:~/.wandb-key"
"""


def test_index_credentials_are_a_build_secret_everywhere(tmp_path):
    spec, plan = _plan(tmp_path, SPEC)
    assert index_secrets(plan) == [("dlbox_index_0", f"https://__token__:{TOKEN}@pypi.example/simple")]
    text = render_dockerfile(plan)
    assert TOKEN not in text and '"$(cat /run/secrets/dlbox_index_0)"' in text
    assert "--mount=type=secret,id=dlbox_index_0,required=true" in text
    assert TOKEN not in json.dumps(plan.to_dict())


def test_labels_keep_names_of_env_and_secrets_not_values(tmp_path):
    spec, plan = _plan(tmp_path, SPEC)
    text = json.dumps(labels(plan))
    assert "value-in-env-0042" not in text and "MY_SETTING" in text and "HF_TOKEN" in text


def test_compose_and_devcontainer_reference_secrets_by_name(tmp_path):
    spec, plan = _plan(tmp_path, SPEC)
    compose = compose_dict(plan, image="img")
    svc = compose["services"][plan.project]
    assert svc["environment"]["HF_TOKEN"] == "${HF_TOKEN}" and svc["secrets"] == ["WANDB_API_KEY"]
    assert compose["secrets"] == {"WANDB_API_KEY": {"file": "~/.wandb-key"}}
    dc = devcontainer_dict(plan, image="img")
    assert dc["containerEnv"]["HF_TOKEN"] == "${localEnv:HF_TOKEN}"
    assert "type=bind,source=~/.wandb-key,target=/run/secrets/WANDB_API_KEY,readonly" in dc["mounts"]
    assert dc["image"] == "img"


def test_doctor_warns_about_a_world_readable_proxy_password(tmp_path):
    from dlbox.doctor.proxy import check_secret_files
    from dlbox.host.facts import Facts
    from dlbox.host.sysroot import SysRoot

    (tmp_path / "etc/docker").mkdir(parents=True)
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.write_text('{"proxies": {"http-proxy": "http://u:hunter2@10.0.0.1:3128"}}')
    daemon.chmod(0o644)
    check = check_secret_files(Facts(SysRoot(tmp_path)))
    assert check.status == "warn" and "/etc/docker/daemon.json" in check.detail and "hunter2" not in check.detail
    daemon.chmod(0o600)
    assert check_secret_files(Facts(SysRoot(tmp_path))).status == "ok"
