"""Check a project's image: the in-container probes (GPU, limits, perf) judged into checks, and
every top-level dependency imported inside the image."""

from __future__ import annotations

from pathlib import Path

from dlbox.engine.run import RunOptions, ca_for, run_argv, run_env
from dlbox.engine.secrets import one_off_key, remove_container_files
from dlbox.host.sysroot import SysRoot
from dlbox.workflow import Project
from dlbox.workflow.containers import run_files

TEMPLATES = Path(__file__).parent.parent / "templates"


def _probe_json(stdout: bytes | str) -> dict | None:
    import json

    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None


def _probe(name: str) -> str:
    return (TEMPLATES / name).read_text()


def verify(p: Project, image: str, *, require_gpu: bool = False, perf: bool = False) -> list:
    """Run the in-container probe (templates/verify_inside.py) with the project's run flags and
    turn its observations into checks. A container that cannot even start is one `fail`.
    `perf` also runs templates/verify_perf.py in the same kind of container (`verify --perf`)."""
    from dlbox.doctor.container import checks_from_observations
    from dlbox.engine.run import explain_run_failure
    from dlbox.report import Check

    def in_container(script: str):
        key = one_off_key(p.plan)
        try:
            opts = RunOptions(image=image, command=("python", "-"), interactive=True, ca_bundle=ca_for(p.plan),
                              **run_files(p, key))
            proc = p.docker.run(run_argv(p.plan, opts), input=script, check=False, env=run_env(p.plan), timeout=900)
        finally:
            remove_container_files(key)
        if proc.returncode != 0:
            err = explain_run_failure(p.docker.error(proc.stderr.decode(errors="replace"), "docker run"))
            return None, Check("container-start", "fail", err.message, err.fix or "")
        obs = _probe_json(proc.stdout)
        if obs is None:
            return None, Check("container-start", "fail", "the probe printed no JSON: "
                               + proc.stderr.decode(errors="replace")[-300:])
        return obs, None

    obs, failed = in_container(_probe("verify_inside.py"))
    if failed:
        return [failed]
    checks = checks_from_observations(obs, driver=p.host.driver, expect_nvcc=p.plan.choice.has_nvcc,
                                      require_gpu=require_gpu, host_memlock_hard=p.host.limits.memlock_hard)
    if perf:
        from dlbox.doctor.perf import perf_checks

        pobs, failed = in_container(_probe("verify_perf.py"))
        checks += [failed] if failed else perf_checks(pobs)
    return checks + verify_imports(p, image)


def verify_here(python: str, *, require_gpu: bool = False, perf: bool = False, raw_dir: Path | None = None) -> list:
    """The same probes run by `python` on this machine, no container (`verify --here`): for a GPU
    host without Docker, or to compare the host with its containers. `raw_dir` keeps the raw
    observations (inside.json, perf.json) next to the checks."""
    import json
    import subprocess

    from dlbox.doctor.container import checks_from_observations
    from dlbox.host.facts import Facts
    from dlbox.report import Check

    def run(name: str):
        try:
            proc = subprocess.run([python, "-"], input=_probe(name), capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, Check("probe", "fail", f"{python} could not run {name}: {exc}",
                               "give a Python that exists, e.g. --python python3")
        obs = _probe_json(proc.stdout)
        if obs is None:
            return None, Check("probe", "fail", f"{name} printed no JSON: {proc.stderr[-300:]}")
        if raw_dir is not None:
            raw_dir.mkdir(parents=True, exist_ok=True)
            (raw_dir / name.replace("verify_", "").replace(".py", ".json")).write_text(json.dumps(obs, indent=2) + "\n")
        return obs, None

    obs, failed = run("verify_inside.py")
    if failed:
        return [failed]
    host = Facts(SysRoot())
    checks = checks_from_observations(obs, driver=host.driver, expect_nvcc=False, require_gpu=require_gpu,
                                      host_memlock_hard=host.limits.memlock_hard)
    if perf:
        from dlbox.doctor.perf import perf_checks

        pobs, failed = run("verify_perf.py")
        checks += [failed] if failed else perf_checks(pobs)
    return checks


def verify_plan(p: Project) -> dict:
    """What verify_imports.py checks: the project's top-level dependencies (what a plain install
    gets) and torch.compile when the project calls it or a compiler is planned."""
    editable = {d.name for d in (p.declared.deps if p.declared else ()) if d.editable}
    deps = [n for n in p.plan.packages if n not in editable]   # declared + [env] pip, one parser
    if p.plan.build.torch is not None and "torch" not in deps:
        deps.insert(0, "torch")
    pkg = p.plan.build.package
    if pkg is not None and pkg.name:
        deps.append(pkg.name)  # the project's own package, installed editable (and its extensions)
    compiler = any(a in ("g++", "build-essential") for a in p.plan.build.apt)
    wants = bool(p.declared and p.declared.torch_compile)
    return {"deps": list(dict.fromkeys(deps)), "compile": bool(p.plan.build.torch is not None and (compiler or wants))}


def verify_imports(p: Project, image: str) -> list:
    """Import every top-level dependency inside the image (templates/verify_imports.py)."""
    import json

    from dlbox.catalog import load as load_catalog
    from dlbox.doctor.imports import import_checks
    from dlbox.report import Check

    cfg = verify_plan(p)
    if not cfg["deps"] and not cfg["compile"]:
        return []
    script = (TEMPLATES / "verify_imports.py").read_text()
    opts = RunOptions(image=image, command=("python", "-", json.dumps(cfg)), interactive=True, ca_bundle=ca_for(p.plan))
    proc = p.docker.run(run_argv(p.plan, opts), input=script, check=False, env=run_env(p.plan), timeout=900)
    try:
        obs = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return [Check("imports", "fail", "the import probe printed no JSON: "
                      + proc.stderr.decode(errors="replace")[-300:])]
    builders = frozenset(d.package for d in load_catalog().build_deps)
    return import_checks(obs, gpu=bool(p.plan.run.gpu_args), cuda_builders=builders)
