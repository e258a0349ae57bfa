"""Table-driven: (host, request) -> plan. Each case says why, citing the catalog row
([file key] = src/dlbox/catalog/<file>, row <key>)."""

from pathlib import Path

import pytest

from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.host.wheels import LocalWheel, scan_local_wheels
from dlbox.plan.gpu import TorchRequest, choose

FX = Path(__file__).parent.parent / "fixtures" / "nvidia-smi"
R = TorchRequest


def smi(name, caps=None):
    return facts_from_options(nvidia_smi_text=(FX / name).read_text(), driver=None, compute_caps=caps)


def drv(version, *caps, wsl=False):
    return facts_from_options(nvidia_smi_text=None, driver=version, compute_caps=list(caps), wsl=wsl)


NO = lambda image: False  # noqa: E731 — no registry reachable

# (id, host, request, image_available, expected: (base_image, torch requirement, cuda, has_nvcc, fallback_from))
CASES = [
    # 565 reports 12.7 [driver_branches 565]; no 12.7 toolkit [cuda_driver 12.7 toolkit_exists=false];
    # newest torch 2.14.1 has cu126 <= 12.7 fully [torch 2.14.1; cuda_driver 12.6 min 560.28.03]
    ("565-12.7", smi("driver-565-cuda12.7-rtx2080.txt"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # two Ampere GPUs (8.6) on 565: same as above, cu126 kernels 5.0-9.0 cover 8.6 [torch_arch 2.12-2.14 cu126]
    ("multi-gpu-565", smi("multi-gpu-rtx3080-rtx3060-565.57.01.txt"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # WSL2 531.30 -> 12.1 [driver_branches 530]; cu126 only via minor compat (>=525.60.13) [minor_compat 12],
    # nvidia/cuda:12.6 would be refused by NVIDIA_REQUIRE_CUDA (compat.md D6.1) -> slim base
    ("wsl2-4090", smi("wsl2-rtx4090-531.30.txt"), R(), None,
     ("debian:bookworm-slim", "torch==2.14.1+cu126", "12.6", False, None)),
    # seed 004: 470.199.02 reports 11.7 inside a cuda-compat container; branch R470 tops at 11.4
    # [driver_branches 470]; cu118 via 11.x minor compat (>=450.80.02) [minor_compat 11]; M6000 5.2
    # covered by sm_50 in 2.7 cu118 [torch_arch 2.6-2.7.1 cu118]
    ("seed004-m6000", smi("quadro-m6000-470.199.02-in-cuda11.7.txt"), R(), None,
     ("debian:bookworm-slim", "torch==2.7.1+cu118", "11.8", False, None)),
    # R610 UMD header: 13.3 -> cu132 (13.2 <= 13.3) is the newest full variant of 2.14.1 [torch 2.14.1]
    ("r610-umd", smi("r610-kmd-umd-gtx1650-610.57.04.txt"), R(), None,
     ("nvidia/cuda:13.2.1-base-ubuntu22.04", "torch==2.14.1+cu132", "13.2", False, None)),
    # N/A: 575 -> 12.9 [driver_branches 575]; RTX 5070 is 12.0 -> cu126 lacks it, cu128 of 2.11 has
    # 10.0/12.0 [torch_arch 2.11 cu128]; cu129 is unverified so not auto-picked; 12.8 newest patch 12.8.2
    ("na-5070", smi("cuda-na-rtx5070-575.64.03.txt"), R(), None,
     ("nvidia/cuda:12.8.2-base-ubuntu22.04", "torch==2.11.0+cu128", "12.8", False, None)),
    # Blackwell 5090 on 570 (12.8): 2.12+ dropped cu128 [torch 2.12.0], cu130 needs 580; so 2.11.0+cu128
    ("5090-570", smi("rtx5090-570.153.02.txt"), R(), None,
     ("nvidia/cuda:12.8.2-base-ubuntu22.04", "torch==2.11.0+cu128", "12.8", False, None)),
    # H100 9.0 on 570 (12.8): 2.14.1 cu126 is full (12.6 <= 12.8) and covers 9.0 [torch_arch cu126]
    ("h100-570", smi("h100-570.133.20.txt"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # two A100 on 580 (13.0): cu130 full, newest variant; 13.0.3 tag [nvidia_cuda_tags 13.0.3 ubuntu22.04]
    ("a100x2-580", smi("multi-gpu-a100-580.126.09.txt"), R(), None,
     ("nvidia/cuda:13.0.3-base-ubuntu22.04", "torch==2.14.1+cu130", "13.0", False, None)),
    # Maxwell GTX 960 on a CUDA 13 driver: cu130 has no sm_5x [torch_arch cu130]; cu126 does
    ("gtx960-580", smi("gtx960-580.82.09.txt"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # Colab T4 (-q output) 460.32.03 -> 11.2; cu118 via minor compat; T4 7.5 covered [torch_arch cu118]
    ("colab-t4", smi("query-q-tesla-t4-460.32.03.txt"), R(), None,
     ("debian:bookworm-slim", "torch==2.7.1+cu118", "11.8", False, None)),
    # csv query gives caps directly (TITAN V 7.0, RTX 5880 Ada 8.9); 570.86 -> 12.8 -> 2.14.1 cu126 covers both
    ("csv-titanv", smi("query-csv-titanv-rtx5880.csv.txt"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # devel on 565: cu126 full; cudnn-devel tag exists [nvidia_cuda_tags 12.6.3 ubuntu22.04 cudnn]
    ("devel-565", smi("driver-565-cuda12.7-rtx2080.txt"), R(flavor="devel"), None,
     ("nvidia/cuda:12.6.3-cudnn-devel-ubuntu22.04", "torch==2.14.1+cu126", "12.6", True, None)),
    # flash-attn compiles CUDA -> nvcc -> devel [cuda_build_deps flash-attn]; H100 on 570
    ("flash-attn", drv("570.124.06", "9.0"), R(packages=("flash-attn", "numpy")), None,
     ("nvidia/cuda:12.6.3-cudnn-devel-ubuntu22.04", "torch==2.14.1+cu126", "12.6", True, None)),
    # deepspeed likewise [cuda_build_deps deepspeed]
    ("deepspeed", drv("580.65.06", "8.0"), R(packages=("deepspeed",)), None,
     ("nvidia/cuda:13.0.3-cudnn-devel-ubuntu22.04", "torch==2.14.1+cu130", "13.0", True, None)),
    # devel on 535 (12.2): devel image must start, so only full variants: newest torch with one is
    # 2.7.1+cu118 [torch 2.7.1]; 11.8.0-cudnn8-devel exists [nvidia_cuda_tags 11.8.0 ubuntu22.04]
    ("devel-535", drv("535.104.05", "8.6"), R(flavor="devel"), None,
     ("nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", "torch==2.7.1+cu118", "11.8", True, None)),
    # runtime on 535: cu126 through minor compat, slim base (NVIDIA_REQUIRE_CUDA), PTX warning
    ("runtime-535", drv("535.104.05", "8.6"), R(), None,
     ("debian:bookworm-slim", "torch==2.14.1+cu126", "12.6", False, None)),
    # pinned old torch on a new driver: 2.3.1 newest full variant on 12.4 is cu121 [torch 2.3.1]
    # pinned 2.3.1 on 550: cu121 exists but PyTorch's 2.3 release matrix lists 12.1 as experimental,
    # 11.8 as stable [torch.json 2.3.1 variants' `stable`], so the stable, fully supported cu118
    ("pin-2.3.1-550", drv("550.54.15", "8.6"), R(torch="2.3.1"), None,
     ("nvidia/cuda:11.8.0-base-ubuntu22.04", "torch==2.3.1+cu118", "11.8", False, None)),
    # ... and cu121 when asked for by CUDA
    ("pin-2.3.1-cuda12.1-550", drv("550.54.15", "8.6"), R(torch="2.3.1", cuda="12.1"), None,
     ("nvidia/cuda:12.1.1-base-ubuntu22.04", "torch==2.3.1+cu121", "12.1", False, None)),
    # pinned 2.3.1 on 470: cu118 via minor compat [torch 2.3.1, minor_compat 11]
    ("pin-2.3.1-470", drv("470.199.02", "8.6"), R(torch="2.3.1"), None,
     ("debian:bookworm-slim", "torch==2.3.1+cu118", "11.8", False, None)),
    # --cuda 12.1 on a 13.0 driver: 2.5.1 is the newest torch with cu121 [torch 2.5.1]
    ("cuda-12.1-on-580", drv("580.65.06", "8.0"), R(cuda="12.1"), None,
     ("nvidia/cuda:12.1.1-base-ubuntu22.04", "torch==2.5.1+cu121", "12.1", False, None)),
    # torch 2.0.1 on 530 (12.1): cu118 full [torch 2.0.1]; 11.8.0-base-ubuntu22.04 exists
    # pinned 2.0.1 on 530: 11.7 is 2.0's stable CUDA, 11.8 its experimental one [torch.json 2.0.1 `stable`]
    ("pin-2.0.1-530", drv("530.30.02", "8.6"), R(torch="2.0.1"), None,
     ("nvidia/cuda:11.7.1-base-ubuntu22.04", "torch==2.0.1+cu117", "11.7", False, None)),
    # Python 3.10 -> ubuntu22.04's own python3 [images os_python ubuntu22.04 3.10]
    ("py3.10-560", drv("560.35.03", "8.6"), R(python="3.10"), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # Python 3.12 -> ubuntu24.04 [images cuda_os_preference 3.12]; 13.0.3-base-ubuntu24.04 exists
    ("py3.12-580", drv("580.65.06", "8.9"), R(python="3.12"), None,
     ("nvidia/cuda:13.0.3-base-ubuntu24.04", "torch==2.14.1+cu130", "13.0", False, None)),
    # Python 3.13: no nvidia/cuda OS ships it, Debian trixie does -> trixie slim + wheel, nothing to
    # download [images cpu_base_preference 3.13]; with nvcc: the devel image + uv-managed CPython
    # [images uv_python 3.13; nvidia_cuda_tags 13.0.3 ubuntu24.04]
    ("py3.13-580", drv("580.65.06", "8.9"), R(python="3.13"), None,
     ("debian:trixie-slim", "torch==2.14.1+cu130", "13.0", False, None)),
    ("py3.13-580-devel", drv("580.65.06", "8.9"), R(python="3.13", flavor="devel"), None,
     ("nvidia/cuda:13.0.3-cudnn-devel-ubuntu24.04", "torch==2.14.1+cu130", "13.0", True, None)),
    # Python 3.14: no OS ships it -> the newest OS with a 13.0 tag, uv-managed CPython there
    ("py3.14-580", drv("580.65.06", "8.9"), R(python="3.14"), None,
     ("nvidia/cuda:13.0.3-base-ubuntu24.04", "torch==2.14.1+cu130", "13.0", False, None)),
    # registry unreachable: slim base + CUDA wheel, fallback recorded
    ("no-registry", drv("560.35.03", "8.6"), R(), NO,
     ("debian:bookworm-slim", "torch==2.14.1+cu126", "12.6", False, "nvidia/cuda:12.6.3-base-ubuntu22.04")),
    # devel cannot fall back with nvcc: slim + warning
    ("no-registry-devel", drv("560.35.03", "8.6"), R(flavor="devel"), NO,
     ("debian:bookworm-slim", "torch==2.14.1+cu126", "12.6", False, "nvidia/cuda:12.6.3-cudnn-devel-ubuntu22.04")),
    # no driver: CPU wheels, slim bookworm for 3.11 [images cpu_base_preference 3.11; torch 2.14.1 cpu]
    ("no-driver", None, R(), None, ("debian:bookworm-slim", "torch==2.14.1+cpu", None, False, None)),
    # --no-gpu with a driver: CPU anyway; 3.12 -> ubuntu:24.04
    ("no-gpu-3.12", drv("550.54.15", "8.6"), R(gpu=False, python="3.12"), None,
     ("ubuntu:24.04", "torch==2.14.1+cpu", None, False, None)),
    # no GPU, Python 3.10 -> ubuntu:22.04
    ("no-gpu-3.10", None, R(python="3.10"), None, ("ubuntu:22.04", "torch==2.14.1+cpu", None, False, None)),
    # torch = none with a GPU: newest CUDA <= 12.4 with a ubuntu22.04 tag [nvidia_cuda_tags 12.4.1]
    ("torch-none-550", drv("550.54.15", "8.6"), R(torch="none"), None,
     ("nvidia/cuda:12.4.1-base-ubuntu22.04", None, "12.4", False, None)),
    # user base kept, torch still matched to the driver
    ("user-base", drv("560.35.03", "8.6"), R(base="pytorch/pytorch:2.3.1-cuda12.1-cudnn8-devel"), None,
     ("pytorch/pytorch:2.3.1-cuda12.1-cudnn8-devel", "torch==2.14.1+cu126", "12.6", True, None)),
    # K80 (3.7) on 470: 2.7 cu118 still carries sm_37 [torch_arch 2.6-2.7.1 cu118, measured]
    ("k80-470", drv("470.199.02", "3.7"), R(), None,
     ("debian:bookworm-slim", "torch==2.7.1+cu118", "11.8", False, None)),
    # Volta V100 on 580: cu130 lacks 7.0 [torch_arch cu130]; cu126 covers it
    ("v100-580", drv("580.65.06", "7.0"), R(), None,
     ("nvidia/cuda:12.6.3-base-ubuntu22.04", "torch==2.14.1+cu126", "12.6", False, None)),
    # Volta + Blackwell together on 580: no single 2.12+ variant covers both; 2.10 cu128 has 7.0..12.0
    # [torch_arch 2.8-2.10 cu128]
    ("v100+5090-580", drv("580.65.06", "7.0", "12.0"), R(), None,
     ("nvidia/cuda:12.8.2-base-ubuntu22.04", "torch==2.10.0+cu128", "12.8", False, None)),
]


@pytest.mark.parametrize("cid,host,req,avail,expected", CASES, ids=[c[0] for c in CASES])
def test_plan(cid, host, req, avail, expected):
    c = choose(req, host, image_available=avail)
    got = (c.base_image, c.torch.requirement if c.torch else None, c.cuda, c.has_nvcc, c.fallback_from)
    assert got == expected
    assert c.reasons and all(isinstance(r, str) for r in c.reasons)
    if c.torch and c.torch.variant != "cpu":
        assert c.torch.index_url == "https://download.pytorch.org/whl/" + c.torch.variant
        assert any("[torch.json" in r for r in c.reasons)


def test_minor_compat_warns_ptx():
    c = choose(R(), drv("535.104.05", "8.6"))
    assert any("minor-version compatibility" in w and "PTX" in w for w in c.warnings)


def test_devel_fallback_warns_nvcc_missing():
    c = choose(R(flavor="devel"), drv("560.35.03", "8.6"), image_available=NO)
    assert any("nvcc will be missing" in w for w in c.warnings)
    assert any("cannot be had" in r for r in c.reasons)


# (id, host, request, words the error must contain)
ERRORS = [
    # torch 2.13 has only cu126/cu130/cu132 [torch 2.13.0]; 470 is below the 12.x floor 525.60.13
    ("2.13-on-470", drv("470.199.02", "8.6"), R(torch="2.13.0"), ["525.60.13", "2.7.1+cu118"]),
    # 5090 (12.0) with torch 2.6: no Blackwell kernels before 2.7 cu128 [torch_arch 2.6 cu118/cu124/cu126]
    # nearest to the pin first: 2.7.0+cu128 is the first release with sm_120 kernels [torch_arch 2.7 cu128]
    ("5090-torch-2.6", smi("rtx5090-570.153.02.txt"), R(torch="2.6.0"), ["12.0", "use torch 2.7.0+cu128"]),
    # GTX 960 forced to CUDA 13: CUDA 13 dropped sm_50-70 [torch_arch cu130]
    ("gtx960-cuda13", smi("gtx960-580.82.09.txt"), R(cuda="13.0"), ["5.2", "cu126"]),
    # driver 440 (10.2): only Python <= 3.10 torch (1.12.1+cu102) works [torch 1.12.1]
    # ... and the driver that unlocks a wheel for 3.11: the 11.x minor-compat floor [minor_compat 11]
    ("440-py3.11", drv("440.33.01", "7.5"), R(), ["1.12.1+cu102", 'python = "3.10"', "driver >= 450.80.02"]),
    # a version the catalog does not list
    ("unknown-torch", drv("550.54.15", "8.6"), R(torch="9.9.9"), ["not in the catalog"]),
    # torch 2.1.0 stops at Python 3.11 [torch 2.1.0]
    ("py-range", drv("550.54.15", "8.6"), R(torch="2.1.0", python="3.12"), ["3.8-3.11"]),
    # CUDA 12.8 asked on a 12.2 driver with devel... fine via minor; CUDA 13.0 on 535 is impossible
    ("cuda13-on-535", drv("535.104.05", "8.6"), R(cuda="13.0"), ["580.65.06"]),
]


@pytest.mark.parametrize("cid,host,req,words", ERRORS, ids=[e[0] for e in ERRORS])
def test_plan_errors(cid, host, req, words):
    with pytest.raises(PlanError) as exc:
        choose(req, host)
    text = str(exc.value)
    for w in words:
        assert w in text, text


def test_local_wheel_preferred_air_gapped(tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / "README").write_text("")
    wheels = scan_local_wheels([str(tmp_path), str(tmp_path / "missing")])
    assert wheels == (LocalWheel(str(tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"),
                                 "torch", "2.13.0+cpu", ("cp311",), "manylinux_2_28_x86_64"),)
    c = choose(R(), None, local_wheels=wheels)
    assert (c.torch.requirement, c.torch.index_url, c.torch.find_links) == ("torch==2.13.0+cpu", None, str(tmp_path))
    # a cp310 wheel does not fit Python 3.11
    assert choose(R(python="3.10"), None, local_wheels=wheels).torch.index_url.endswith("/cpu")


def test_local_wheel_not_in_catalog_warns():
    w = (LocalWheel("/w/torch-2.99.0+cpu-cp311-cp311-linux_x86_64.whl", "torch", "2.99.0+cpu", ("cp311",), "linux_x86_64"),)
    c = choose(R(), None, local_wheels=w)
    assert c.torch.version == "2.99.0" and any("not in the catalog" in x for x in c.warnings)


def test_local_cpu_wheel_ignored_on_gpu_host():
    w = (LocalWheel("/w/torch-2.13.0+cpu-cp311-cp311-x.whl", "torch", "2.13.0+cpu", ("cp311",), "x"),)
    assert choose(R(), drv("560.35.03", "8.6"), local_wheels=w).torch.variant == "cu126"


def test_opt_wheels_on_this_machine():
    wheels = scan_local_wheels(["/opt/wheels"])
    if not wheels:
        pytest.skip("no /opt/wheels here")
    assert choose(R(), None, local_wheels=wheels).torch.find_links == "/opt/wheels"


def test_bad_flavor():
    with pytest.raises(PlanError):
        choose(R(flavor="debug"), None)
