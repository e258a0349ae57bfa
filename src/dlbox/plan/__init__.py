"""Plan: the decision. Spec + Host in, an immutable, serialisable Plan out.

`resolve()` never probes and never runs Docker: everything it knows comes in through the
Spec and the Host, so `dlbox plan --driver … --compute-cap …` replays any machine. The GPU
part (base image, CUDA, torch wheel) is decided by `dlbox.plan.gpu.choose`, the run flags by
`dlbox.plan.run`; this module adds the build inputs, each with its reason.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from dlbox.catalog import load as load_catalog
from dlbox.host import Host
from dlbox.plan.gpu import ImageChoice, TorchRequest, choose
from dlbox.plan.model import (
    ALWAYS_NO_PROXY,
    BuildPlan,
    Overrides,
    Plan,
    Proxy,
    is_loopback,
)
from dlbox.plan.project_package import plan_project_package, wants_devel
from dlbox.plan.python_download import python_download
from dlbox.plan.run import run_plan, split_command
from dlbox.plan.system import SystemPlan, plan_system, python_warning
from dlbox.plan.torch_family import (
    choose_for_project,
    family_pins,
    family_sources,
    project_torch,
)
from dlbox.redact import mask_url
from dlbox.spec import Spec
from dlbox.spec.declared.requirements import pip_lines


def lock_file_name(choice: ImageChoice) -> str:
    """One lock per build variant, committed next to dlbox.toml: dlbox-cpu.lock on a laptop,
    dlbox-cu126.lock for the server (`dlbox lock --driver ...` writes it from anywhere)."""
    if choice.torch is not None:
        variant = choice.torch.variant
    else:
        variant = f"cu{choice.cuda.replace('.', '')}" if choice.gpu and choice.cuda else "cpu"
    return f"dlbox-{variant}.lock"


def gpu_wanted(spec: Spec) -> bool:
    return str(spec.run.gpus) != "none"


def find_links_dirs(spec: Spec, host: Host) -> tuple[str, ...]:
    fl = spec.env.find_links
    if fl == "none":
        return ()
    if fl == "auto":
        return host.net.find_links
    out = []
    for d in fl:
        p = Path(d).expanduser()
        out.append(str(p if p.is_absolute() else (spec.project_dir / p).resolve()))
    return tuple(out)


def resolve(
    spec: Spec,
    host: Host,
    *,
    overrides: Overrides = Overrides(),
    image_available: Callable[[str], bool] | None = None,
    declared=None,
) -> Plan:
    """Decide everything. `overrides` are the what-if flags (torch, cuda, flavor, no_gpu);
    `declared` (dlbox.spec.declared.Declared) is what the project's own files ask for: its
    torch constraints are inputs here, satisfied or refused before any build."""
    o = overrides
    want_gpu = gpu_wanted(spec) and not o.no_gpu
    pip_deps = pip_lines(spec.project_dir, spec.env.pip)
    packages = project_packages(declared, pip_deps)
    request = TorchRequest(
        torch=o.torch or spec.env.torch,
        cuda=o.cuda or spec.env.cuda,
        python=spec.env.python,
        flavor=o.flavor or ("devel" if wants_devel(declared) else spec.env.flavor),
        base=spec.env.base,
        gpu=want_gpu,
        packages=packages,
    )
    wish = project_torch(tuple(declared.deps if declared is not None else ()) + pip_deps)
    choice, more_reasons, more_warnings = choose_for_project(request, wish, lambda r: choose(
        r,
        host.driver if want_gpu else None,
        local_wheels=host.local_wheels,
        image_available=image_available,
    ))
    reasons = more_reasons + list(choice.reasons)
    warnings = list(choice.warnings) + more_warnings
    family = family_pins(choice.torch.version, wish.members) if choice.torch else ()
    sources = family_sources(choice.torch, wish.members, gpu=choice.gpu, cuda=choice.cuda, python=choice.python,
                             local_wheels=host.local_wheels)
    reasons += [p.why for p in family if p.name != "torch"]
    if sources:
        reasons.append("torch family from: " + "; else ".join(s.why for s in sources))
    proxy = _proxy(spec, host)
    caps = [g.compute_cap for g in (host.driver.gpus if host.driver and choice.gpu else ()) if g.compute_cap]
    package, pkg_reasons, pkg_apt = plan_project_package(declared, choice, caps)
    reasons += pkg_reasons
    system = plan_system(tuple(spec.env.apt), spec.env.compiler, declared, pip_deps)
    reasons += system.reasons
    warnings += system.warnings
    py_warning = python_warning(choice.python, declared)
    if py_warning:
        warnings.append(py_warning)
    build = _build_plan(spec, host, choice, proxy, packages, reasons, system)
    download = python_download(choice.python_install, choice.base_os, spec_mirror=spec.net.python_mirror,
                               host_mirror=host.net.python_mirror)
    if download is not None:
        reasons.append(download.reason)
        build = replace(build, python_mirror=download.mirror, python_refusal=download.refusal)
    build = replace(build, family=family, family_sources=sources, lock=lock_file_name(choice), package=package,
                    requirement_files=tuple(getattr(declared, "requirement_files", ())),
                    apt=tuple(dict.fromkeys(build.apt + tuple(pkg_apt))),
                    python_dev=build.python_dev or bool(package and package.extensions
                                                        and build.python_install.startswith("apt:")))
    run = run_plan(spec, host, choice, proxy, want_gpu, reasons, warnings)
    return Plan(
        project=spec.name,
        project_dir=str(spec.project_dir),
        choice=choice,
        build=build,
        run=run,
        reasons=tuple(reasons),
        warnings=tuple(dict.fromkeys(warnings)),
        host=host_facts(host),
        spec_public=public_spec(spec),
        spec_file=spec.file.name if spec.file else "dlbox.toml",
        packages=packages,
    )


def project_packages(declared, pip_deps) -> tuple[str, ...]:
    """Canonical names of what a plain install gets: the project's declared dependencies (every
    requirements file with its -r includes, pyproject, setup.py, environment.yml; read once by
    dlbox.spec.declared) plus dlbox.toml's [env] pip, read by the same pip parser."""
    deps = tuple(getattr(declared, "deps", ()) or ()) + tuple(pip_deps)
    return tuple(sorted({d.name for d in deps if d.name and d.group is None}))


def public_spec(spec: Spec) -> dict:
    """The spec as it may be shown or stored in an image label: URL passwords masked (proxy,
    index, mirror), [run] env and secrets reduced to their names (an HF_TOKEN never reaches an image)."""
    public = json.loads(json.dumps(spec.to_dict()))
    net = public.get("net", {})
    for key in ("proxy", "pip_index", "apt_mirror", "python_mirror"):
        if net.get(key) not in (None, "auto", "none"):
            net[key] = mask_url(net[key])
    run = public.get("run", {})
    if isinstance(run.get("env"), dict):
        run["env"] = {k: "***" for k in run["env"]}
    if isinstance(run.get("secrets"), dict):
        run["secrets"] = sorted(run["secrets"])
    return public


def host_facts(host: Host) -> dict:
    """The `host` object of `plan --json`: driver, the CUDA it allows and why, each GPU's compute
    capability and where it came from, architecture, WSL, engine runtimes."""
    from dlbox.host.nvidia_smi import host_json

    d = host_json(host.driver) or {"source": None, "driver": None, "gpus": [], "arch": None, "arch_from": "",
                                    "wsl": False, "problem": None}
    if not d.get("arch") and host.arch:
        d["arch"], d["arch_from"] = host.arch, "this machine (platform.machine)"
    d["wsl"] = bool(d.get("wsl") or host.wsl)
    d["engine"] = None if host.engine is None else {"runtimes": list(host.engine.runtimes),
                                                     "default_runtime": host.engine.default_runtime}
    d["cdi_gpu"] = host.cdi_gpu
    d["server"] = host.server
    return d


def _proxy(spec: Spec, host: Host) -> Proxy:
    p = spec.net.proxy
    if p == "none":
        return Proxy()
    if p == "auto":
        http, https = host.net.http_proxy, host.net.https_proxy
    else:
        http = https = p
    if not (http or https):
        return Proxy()
    no_proxy = tuple(dict.fromkeys(ALWAYS_NO_PROXY + tuple(spec.net.no_proxy) + host.net.no_proxy))
    return Proxy(http=http, https=https, no_proxy=no_proxy)


def _build_plan(spec: Spec, host: Host, choice: ImageChoice, proxy: Proxy, packages: tuple[str, ...],
                reasons: list[str], system: SystemPlan) -> BuildPlan:
    ca = spec.net.ca_certs
    if ca == "auto":
        ca_files = (host.net.ca_bundle,) if host.net.ca_bundle else ()
        if ca_files:
            reasons.append(f"CA bundle {host.net.ca_bundle} (from {host.net.ca_bundle_from}) is passed to the build "
                           "as a BuildKit secret and mounted read-only into containers, so pip/uv trust what this host trusts")
    elif ca == "none":
        ca_files = ()
    else:
        ca_files = tuple(str(Path(c).expanduser()) for c in ca)
    index = spec.net.pip_index
    if index == "auto":
        index = host.net.pip_index
        if index:
            reasons.append(f"pip index {mask_url(index)} is the one this host's pip uses")
    elif index == "none":
        index = None
    network_host = bool(proxy) and (is_loopback(proxy.http) or is_loopback(proxy.https))
    if network_host:
        reasons.append("the proxy is on this host's loopback, so build steps use the host network to reach it")
    links = find_links_dirs(spec, host)
    cmd = spec.run.command
    build_deps = {d.package for d in load_catalog().build_deps}
    no_isolation = tuple(sorted(set(packages) & build_deps)) if choice.has_nvcc else ()
    if no_isolation:
        reasons.append(f"{', '.join(no_isolation)} build without isolation so they compile against the planned torch "
                       "(their setup.py imports torch)")
    return BuildPlan(
        base_image=choice.base_image,
        base_os=choice.base_os,
        python=choice.python,
        python_install=choice.python_install,
        torch=choice.torch,
        apt=system.apt,
        pip=tuple(spec.env.pip),
        requirements=spec.env.requirements,
        find_links=links,
        pip_index=index,
        pip_extra_index=host.net.pip_extra_index if spec.net.pip_index == "auto" else (),
        apt_mirror=spec.net.apt_mirror,
        ca_files=ca_files,
        proxy=proxy,
        network_host=network_host,
        command=split_command(cmd),
        python_dev=(choice.has_nvcc or system.python_dev) and choice.python_install.startswith("apt:"),
        no_build_isolation=no_isolation,
    )
