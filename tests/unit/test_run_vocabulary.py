"""One run-flag vocabulary: the RunPlan decides, run_argv / devcontainer / compose only serialise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlbox.engine.run import ExecOptions, RunOptions, exec_argv, logs_argv, run_argv
from dlbox.errors import PlanError
from dlbox.host import EngineFacts, Host, Limits
from dlbox.plan import resolve, split_command
from dlbox.plan.model import Port
from dlbox.render.compose import compose_dict
from dlbox.render.devcontainer import devcontainer_dict
from dlbox.spec import load_spec


def plan_for(tmp_path: Path, text: str = ""):
    (tmp_path / "dlbox.toml").write_text(text)
    host = Host(engine=EngineFacts(runtimes=("runc",)), limits=Limits(None, None), uid=1000, gid=1000)
    return resolve(load_spec(tmp_path), host)


def test_run_command_is_split_like_a_shell(tmp_path):
    plan = plan_for(tmp_path, "[run]\ncommand = \"python -c 'print(1+1)'\"\n")
    assert plan.run.command == ("python", "-c", "print(1+1)")
    assert plan.build.command == ("python", "-c", "print(1+1)")
    assert run_argv(plan, RunOptions(image="img", command=plan.run.command))[-3:] == ["python", "-c", "print(1+1)"]


def test_an_unclosed_quote_is_a_clear_error():
    with pytest.raises(PlanError, match="cannot be split"):
        split_command("python -c 'print(1)")


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1), min_size=1, max_size=5))
def test_a_list_command_is_kept_word_for_word(words):
    assert split_command(words) == tuple(words)


def test_the_plan_decides_shm_hosts_labels_and_the_idle_command(tmp_path):
    plan = plan_for(tmp_path, '[run]\nshm = "16g"\n')
    r = plan.run
    assert r.shm_size == "16g" and not r.ipc_host
    assert r.extra_hosts == ("host.docker.internal:host-gateway",)
    assert dict(r.labels) == {"org.dlbox.project": plan.project, "org.dlbox.project_dir": str(tmp_path)}
    assert r.long_running_command == ("sleep", "infinity")
    argv = run_argv(plan, RunOptions(image="img"))
    assert argv[argv.index("--shm-size") + 1] == "16g"
    assert "--add-host" in argv and f"org.dlbox.project_dir={tmp_path}" in argv
    svc = compose_dict(plan, image="img")["services"][plan.project]
    assert svc["shm_size"] == "16g" and svc["command"] == ["sleep", "infinity"]
    assert svc["extra_hosts"] == list(r.extra_hosts) and svc["labels"] == dict(r.labels)
    dc = devcontainer_dict(plan, image="img")
    assert "--shm-size=16g" in dc["runArgs"] and "--add-host=host.docker.internal:host-gateway" in dc["runArgs"]
    assert not any("project_dir" in a for a in dc["runArgs"]), "a committed file carries no machine path"


def test_security_flags_of_the_plan_reach_every_serialisation(tmp_path):
    plan = plan_for(tmp_path)
    plan = replace(plan, run=replace(plan.run, security_opt=("no-new-privileges",), cap_drop=("ALL",)))
    argv = " ".join(run_argv(plan, RunOptions(image="img")))
    assert "--security-opt no-new-privileges" in argv and "--cap-drop ALL" in argv
    svc = compose_dict(plan, image="img")["services"][plan.project]
    assert svc["security_opt"] == ["no-new-privileges"] and svc["cap_drop"] == ["ALL"]
    run_args = devcontainer_dict(plan, image="img")["runArgs"]
    assert "--security-opt=no-new-privileges" in run_args and "--cap-drop=ALL" in run_args


def test_options_add_labels_env_by_name_and_their_own_ports_without_splicing(tmp_path):
    plan = plan_for(tmp_path, "[run]\nports = [\"8000\"]\n")
    o = RunOptions(image="img", command=("jupyter", "lab"), extra_labels=(("org.dlbox.app", "jupyter"),),
                   env_by_name=("JUPYTER_TOKEN",), ports=(Port(8888, 8888),))
    argv = run_argv(plan, o)
    assert argv[-3:] == ["img", "jupyter", "lab"]
    assert "org.dlbox.app=jupyter" in argv and argv[argv.index("JUPYTER_TOKEN") - 1] == "-e"
    assert "127.0.0.1:8888:8888" in argv and "127.0.0.1:8000:8000" not in argv


def test_exec_and_logs_argv(tmp_path):
    plan = plan_for(tmp_path)
    assert exec_argv(plan, ExecOptions("c1", ("nvidia-smi",), tty=True)) == [
        "exec", "-i", "-t", "--user", "1000:1000", "--workdir", "/workspace", "c1", "/usr/local/bin/dlbox-entrypoint",
        "nvidia-smi"]
    assert logs_argv("c1", tail="0", follow=True) == ["logs", "--tail", "0", "-f", "c1"]
