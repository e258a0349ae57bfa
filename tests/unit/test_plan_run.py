"""Plan → run flags and build inputs, from observed host facts (no Docker, no GPU needed)."""

import os
from pathlib import Path

import pytest

from dlbox.engine.build import _build_env, build_argv
from dlbox.engine.run import RunOptions, run_argv
from dlbox.errors import PlanError
from dlbox.host import EngineFacts, Host, Limits, NetFacts
from dlbox.host.nvidia_smi import parse_nvidia_smi
from dlbox.plan import resolve
from dlbox.redact import mask_url
from dlbox.spec import load_spec

FIX = Path(__file__).resolve().parent.parent / "fixtures"
SECRET = "s3cr3t-pw"
UNLIMITED = Limits(memlock_hard=None, stack_hard=None)
LOCKED_DOWN = Limits(memlock_hard=8 * 2**20, stack_hard=None)   # the CI machines (test-world.md §7)
GPU_ENGINE = EngineFacts(server_version="24.0.7", runtimes=("nvidia", "runc"))


def project(tmp_path: Path, text: str = "") -> Path:
    (tmp_path / "dlbox.toml").write_text(text)
    return tmp_path


def gpu_host(**kw) -> Host:
    driver = parse_nvidia_smi((FIX / "nvidia-smi" / "wsl2-rtx4090-531.30.txt").read_text()) \
        if (FIX / "nvidia-smi" / "wsl2-rtx4090-531.30.txt").exists() else None
    base = dict(driver=driver, engine=GPU_ENGINE, limits=UNLIMITED, uid=1000, gid=1000)
    base.update(kw)
    return Host(**base)


def cpu_host(**kw) -> Host:
    base = dict(driver=None, engine=EngineFacts(server_version="20.10.24", runtimes=("runc",)), limits=LOCKED_DOWN,
                uid=1234, gid=1235)
    base.update(kw)
    return Host(**base)


def argv_of(tmp_path, text, host, **opts) -> list[str]:
    plan = resolve(load_spec(project(tmp_path, text)), host)
    return run_argv(plan, RunOptions(image="img", **opts))


def test_seed_fixture_present():
    assert any((FIX / "nvidia-smi").glob("wsl2-rtx4090-531.30.txt")), "the WSL2 RTX 4090 output from seed 000 is a fixture"


def test_gpu_host_gets_all_flags(tmp_path):
    argv = argv_of(tmp_path, "", gpu_host())
    joined = " ".join(argv)
    assert "--gpus all" in joined and "--ipc=host" in argv
    assert "--ulimit memlock=-1" in joined and "--ulimit stack=67108864" in joined
    assert f"-v {tmp_path}:/workspace" in joined and "--workdir /workspace" in joined
    assert "--user 1000:1000" in joined and "--add-host host.docker.internal:host-gateway" in joined


def test_no_gpu_host_degrades_with_one_warning_each(tmp_path):
    plan = resolve(load_spec(project(tmp_path)), cpu_host())
    argv = run_argv(plan, RunOptions(image="img"))
    assert "--gpus" not in argv and "memlock=-1" not in " ".join(argv)
    assert "stack=67108864" in " ".join(argv)
    assert sum("no NVIDIA GPU" in w for w in plan.warnings) == 1
    assert sum("memlock hard limit here is 8 MiB" in w for w in plan.warnings) == 1
    assert plan.choice.torch.variant == "cpu" and not plan.gpu


def test_gpu_without_container_runtime_warns_and_runs_on_cpu(tmp_path):
    host = gpu_host(engine=EngineFacts(runtimes=("runc",)))
    plan = resolve(load_spec(project(tmp_path)), host)
    assert plan.run.gpu_args == ()
    assert any("dlbox setup nvidia" in w for w in plan.warnings)


def test_cdi_only_host_uses_device_flag(tmp_path):
    host = gpu_host(engine=EngineFacts(runtimes=("runc",)), cdi_gpu=True)
    argv = argv_of(tmp_path, "", host)
    assert "--device" in argv and "nvidia.com/gpu=all" in argv


@pytest.mark.parametrize("gpus, expected", [("all", ["--gpus", "all"]), ("2", ["--gpus", "2"]),
                                            ("0,2", ["--gpus", '"device=0,2"']), ("none", [])])
def test_gpu_selection(tmp_path, gpus, expected):
    argv = argv_of(tmp_path, f'[run]\ngpus = "{gpus}"\n', gpu_host())
    got = argv[argv.index("--gpus"): argv.index("--gpus") + 2] if "--gpus" in argv else []
    assert got == expected


def test_shm_size_instead_of_ipc_host(tmp_path):
    argv = argv_of(tmp_path, '[run]\nshm = "16g"\n', gpu_host())
    assert "--ipc=host" not in argv and argv[argv.index("--shm-size") + 1] == "16g"


def test_ports_bind_loopback_unless_public(tmp_path):
    text = '[run]\nports = ["7860", "8080:80"]\n'
    argv = argv_of(tmp_path, text, cpu_host())
    assert "127.0.0.1:7860:7860" in argv and "127.0.0.1:8080:80" in argv
    argv = argv_of(tmp_path, text, cpu_host(), public=True)
    assert "7860:7860" in argv and "8080:80" in argv


def test_mounts_expand_and_translate_windows_paths_under_wsl(tmp_path):
    text = '[run]\nmounts = ["C:\\\\data:/data:ro", "~/datasets:/datasets", "sub:/sub"]\n'
    argv = argv_of(tmp_path, text, cpu_host(wsl=True))
    assert "/mnt/c/data:/data:ro" in argv
    assert f"{Path.home()}/datasets:/datasets" in argv and f"{tmp_path}/sub:/sub" in argv


def test_windows_path_on_linux_is_a_clear_error(tmp_path):
    with pytest.raises(PlanError, match="Windows path"):
        resolve(load_spec(project(tmp_path, '[run]\nmounts = ["C:/data:/data"]\n')), cpu_host())


def test_run_env_from_spec_goes_through_a_private_env_file(tmp_path):
    from dlbox.engine.secrets import container_files

    plan = resolve(load_spec(project(tmp_path, '[run]\nenv = {HF_HOME = "/workspace/.hf"}\n')), cpu_host())
    with pytest.raises(ValueError):
        run_argv(plan, RunOptions(image="img"))          # never on the argv (ps)
    os.environ["DLBOX_CACHE"] = str(tmp_path / "cache")
    try:
        secrets_dir, env_file = container_files(plan, "t", proxy={})
    finally:
        del os.environ["DLBOX_CACHE"]
    argv = run_argv(plan, RunOptions(image="img", env_file=str(env_file), secrets_dir=str(secrets_dir)))
    assert not any("HF_HOME" in a for a in argv) and argv[argv.index("--env-file") + 1] == str(env_file)
    assert env_file.read_text() == "HF_HOME=/workspace/.hf\n" and env_file.stat().st_mode & 0o777 == 0o600


def test_every_container_drops_capabilities_and_privilege_gain(tmp_path):
    argv = argv_of(tmp_path, "", cpu_host())
    assert argv[argv.index("--security-opt") + 1] == "no-new-privileges"
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and "--cap-add" not in argv and "--privileged" not in argv


def test_ca_bundle_mounted_read_only_entrypoint_sets_env(tmp_path):
    argv = argv_of(tmp_path, "", cpu_host(), ca_bundle="/cache/bundle.pem")
    assert "/cache/bundle.pem:/etc/ssl/certs/dlbox-ca-bundle.pem:ro" in argv
    # the variables are exported by the entrypoint: nothing dlbox injects is left for `docker commit`
    assert not any(a.startswith("SSL_CERT_FILE=") for a in argv)


# -- proxies ----------------------------------------------------------------------------------


def proxied_host(url: str, **kw) -> Host:
    return cpu_host(net=NetFacts(http_proxy=url, https_proxy=url, no_proxy=("corp.local",)), **kw)


def test_loopback_proxy_build_uses_host_network_container_uses_host_gateway(tmp_path):
    url = f"http://user:{SECRET}@127.0.0.1:7890"
    plan = resolve(load_spec(project(tmp_path)), proxied_host(url))
    assert plan.build.network_host
    argv = build_argv(plan, dockerfile="Dockerfile", tag="t", ca_bundle=None, progress="plain", context=".")
    assert argv[argv.index("--network") + 1] == "host"
    # proxies are passed by name only: their values (with the password) are not on the argv
    assert "--build-arg" in argv and "HTTPS_PROXY" in argv and not any(SECRET in a for a in argv)
    assert _build_env(plan)["HTTPS_PROXY"] == url
    container = plan.run.proxy.for_container().env()
    assert container["HTTPS_PROXY"] == f"http://user:{SECRET}@host.docker.internal:7890"
    run = run_argv(plan, RunOptions(image="img"))
    # without a secrets dir (a server's engine) a proxy with a password is not sent at all
    assert not any(SECRET in a for a in run) and "HTTPS_PROXY" not in run
    run = run_argv(plan, RunOptions(image="img", secrets_dir="/s"))
    assert "/s:/run/secrets:ro" in run and "-e" not in run


def test_no_proxy_always_covers_loopback_and_host_gateway(tmp_path):
    plan = resolve(load_spec(project(tmp_path, '[net]\nno_proxy = "gitlab.corp"\n')), proxied_host("http://10.0.0.5:3128"))
    no = plan.run.proxy.no_proxy
    for name in ("localhost", "127.0.0.1", "::1", "host.docker.internal", "gitlab.corp", "corp.local"):
        assert name in no
    assert not plan.build.network_host


def test_proxy_none_and_explicit(tmp_path):
    assert not resolve(load_spec(project(tmp_path, '[net]\nproxy = "none"\n')), proxied_host("http://p:1")).build.proxy
    plan = resolve(load_spec(project(tmp_path, '[net]\nproxy = "http://10.1.1.1:8080"\n')), cpu_host())
    assert plan.build.proxy.https == "http://10.1.1.1:8080"


def test_plan_json_never_shows_a_password(tmp_path):
    import json

    plan = resolve(load_spec(project(tmp_path)), proxied_host(f"http://user:{SECRET}@127.0.0.1:7890"))
    text = json.dumps(plan.to_dict()) + repr(plan)
    assert SECRET not in text and "user:***@" in text


def test_mask_url():
    assert mask_url("http://u:p@h:1") == "http://u:***@h:1"
    assert mask_url("http://h:1") == "http://h:1"


# -- index, mirrors, find_links, CA ---------------------------------------------------------


def test_pip_index_auto_from_host(tmp_path):
    host = cpu_host(net=NetFacts(pip_index="https://mirrors.example/pypi/simple"))
    plan = resolve(load_spec(project(tmp_path)), host)
    assert plan.build.pip_index == "https://mirrors.example/pypi/simple"
    assert any("pip index" in r for r in plan.reasons)


def test_ca_auto_from_host_pip_cert(tmp_path):
    host = cpu_host(net=NetFacts(ca_bundle="/etc/ssl/certs/ca-certificates.crt", ca_bundle_from="PIP_CERT"))
    plan = resolve(load_spec(project(tmp_path)), host)
    assert plan.build.ca_files == ("/etc/ssl/certs/ca-certificates.crt",)
    plan = resolve(load_spec(project(tmp_path, '[net]\nca_certs = "none"\n')), host)
    assert plan.build.ca_files == ()


def test_find_links_auto_uses_host_pip_find_links(tmp_path):
    host = cpu_host(net=NetFacts(find_links=("/opt/wheels",)))
    assert resolve(load_spec(project(tmp_path)), host).build.find_links == ("/opt/wheels",)
    assert resolve(load_spec(project(tmp_path, '[env]\nfind_links = "none"\n')), host).build.find_links == ()


def test_find_links_none_never_plans_a_local_wheel(tmp_path, monkeypatch):
    """Local wheels are scanned only where the build will mount: "none" means none of them."""
    from dlbox import workflow

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "dlbox.toml").write_text('[env]\nfind_links = "none"\n')
    p = workflow.load_project(proj, docker=None)
    assert p.plan.build.find_links == () and p.plan.choice.torch.find_links is None
    (proj / "dlbox.toml").write_text("[env]\n")
    p = workflow.load_project(proj, docker=None)
    assert p.plan.build.find_links == (str(wheels),) and p.plan.choice.torch.find_links == str(wheels)


def test_loopback_only_proxy_warns_about_containers(tmp_path):
    url = f"http://user:{SECRET}@127.0.0.1:7890"
    host = cpu_host(net=NetFacts(http_proxy=url, https_proxy=url, proxy_loopback_only=True))
    plan = resolve(load_spec(project(tmp_path)), host)
    warning = [w for w in plan.warnings if "listens on 127.0.0.1 only" in w]
    assert len(warning) == 1 and "allow LAN" in warning[0] and SECRET not in warning[0]
    assert not any("listens on" in w for w in resolve(load_spec(project(tmp_path)), proxied_host(url)).warnings)


def test_loopback_only_listener_is_detected_from_the_kernel_table():
    """A real listener on 127.0.0.1 only, and one on all addresses (read from /proc/net/tcp)."""
    import socket

    from dlbox.host.netconf import listens_on_loopback_only

    lo, anyaddr = socket.socket(), socket.socket()
    try:
        lo.bind(("127.0.0.1", 0))
        lo.listen()
        anyaddr.bind(("0.0.0.0", 0))
        anyaddr.listen()
        assert listens_on_loopback_only(f"http://127.0.0.1:{lo.getsockname()[1]}")
        assert not listens_on_loopback_only(f"http://127.0.0.1:{anyaddr.getsockname()[1]}")
        assert not listens_on_loopback_only("http://10.0.0.5:3128")
    finally:
        lo.close()
        anyaddr.close()
