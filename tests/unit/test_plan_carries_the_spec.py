"""The Spec stops at the Plan: render and engine get everything they need from the Plan."""

from __future__ import annotations

import inspect

from dlbox.engine.build import build
from dlbox.engine.stage import stage_project
from dlbox.host import Host
from dlbox.plan import resolve
from dlbox.render.dockerfile import render_dockerfile
from dlbox.spec import load_spec
from dlbox.spec.declared import declared_for


def test_plan_carries_public_spec_packages_and_requirements_path(tmp_path):
    (tmp_path / "requirements.txt").write_text("mamba_ssm==2.2.2\njupyterlab\n")
    (tmp_path / "dlbox.toml").write_text('[env]\nrequirements = "requirements.txt"\n'
                                         '[net]\nproxy = "http://user:s3cret@proxy.corp:3128"\n')
    spec = load_spec(tmp_path)
    plan = resolve(spec, Host(), declared=declared_for(spec))
    assert plan.requirements_path == tmp_path / "requirements.txt"
    assert "jupyterlab" in plan.packages and "mamba-ssm" in plan.packages
    assert plan.spec_file == "dlbox.toml"
    assert "s3cret" not in str(plan.spec_public) and "proxy.corp" in plan.spec_public["net"]["proxy"]
    text = render_dockerfile(plan)
    assert "s3cret" not in text and "org.dlbox.spec" in text


def test_render_and_engine_take_no_spec():
    for fn in (render_dockerfile, build, stage_project):
        params = inspect.signature(fn).parameters
        assert not any("spec" in name for name in params), (fn.__name__, list(params))
