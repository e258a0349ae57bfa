"""checks_from_observations on recorded observation dicts."""

from dlbox.doctor.container import checks_from_observations
from dlbox.host.nvidia_smi import facts_from_options

IDS = {"nvidia-smi", "torch-import", "torch-cuda", "gpu-devices", "gpu-arch", "gpu-matmul", "cpu-matmul",
       "nvcc", "shm", "ulimits", "cuda-vs-driver"}

LIMITS = {"memlock": {"soft": None, "hard": None}, "stack": {"soft": 67108864, "hard": None},
          "nofile": {"soft": 1048576, "hard": 1048576}}

# CI machine: CPU wheel, no GPU, no nvidia-smi (shape printed by templates/verify_inside.py)
CPU_OBS = {
    "python": "3.11.2", "nvidia_smi": {"present": False, "returncode": None, "output": ""},
    "nvcc": {"present": False, "returncode": None, "output": ""},
    "torch": {"present": True, "version": "2.13.0+cpu", "cuda": None, "cpu_matmul_ok": True,
              "cuda_available": False, "device_count": 0, "devices": [], "arch_list": []},
    "shm_bytes": 64 << 20, "ulimits": LIMITS, "env": {"NVIDIA_VISIBLE_DEVICES": None, "NVIDIA_REQUIRE_CUDA": None, "CUDA_VERSION": None},
}

SMI = """| NVIDIA-SMI 560.35.03              Driver Version: 560.35.03      CUDA Version: 12.6     |
|   0  NVIDIA GeForce RTX 3090        Off |   00000000:01:00.0  On |                  N/A |
|  0%   40C    P8             20W /  350W |     500MiB /  24576MiB |      0%      Default |"""

GPU_OBS = {
    "python": "3.11.0", "nvidia_smi": {"present": True, "returncode": 0, "output": SMI},
    "nvcc": {"present": False, "returncode": None, "output": ""},
    "torch": {"present": True, "version": "2.14.1+cu126", "cuda": "12.6", "cpu_matmul_ok": True,
              "cuda_available": True, "device_count": 1, "devices": [{"name": "NVIDIA GeForce RTX 3090", "capability": "8.6"}],
              "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
              "gpu_matmul_ok": True, "gpu_matmul_max_abs_diff": 1e-6},
    "shm_bytes": 8 << 30, "ulimits": LIMITS,
    "env": {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_REQUIRE_CUDA": "cuda>=12.6", "CUDA_VERSION": "12.6.3"},
}


def by_id(checks):
    assert {c.id for c in checks} >= IDS
    return {c.id: c for c in checks}


def test_cpu_host_skips_gpu_checks():
    c = by_id(checks_from_observations(CPU_OBS, driver=None, expect_nvcc=False, require_gpu=False))
    for cid in ("nvidia-smi", "torch-cuda", "gpu-devices", "gpu-arch", "gpu-matmul", "cuda-vs-driver"):
        assert c[cid].status == "skip", cid
    assert c["torch-import"].status == c["cpu-matmul"].status == c["nvcc"].status == "ok"
    assert c["shm"].status == "warn" and "--shm-size" in c["shm"].fix
    assert c["ulimits"].status == "ok"


def test_cpu_host_require_gpu_fails():
    c = by_id(checks_from_observations(CPU_OBS, driver=None, expect_nvcc=False, require_gpu=True))
    assert c["nvidia-smi"].status == c["torch-cuda"].status == c["gpu-matmul"].status == "fail"


def test_gpu_all_ok():
    d = facts_from_options(nvidia_smi_text=SMI, driver=None, compute_caps=None)
    c = by_id(checks_from_observations(GPU_OBS, driver=d, expect_nvcc=False, require_gpu=True))
    assert all(x.status == "ok" for x in c.values()), [x for x in c.values() if x.status != "ok"]


def test_arch_gap_and_nvcc_expected():
    obs = {**GPU_OBS, "torch": {**GPU_OBS["torch"], "devices": [{"name": "NVIDIA GeForce RTX 5090", "capability": "12.0"}]}}
    c = by_id(checks_from_observations(obs, driver=None, expect_nvcc=True, require_gpu=False))
    assert c["gpu-arch"].status == "fail" and "dlbox plan" in c["gpu-arch"].fix
    assert c["nvcc"].status == "fail"


def test_errors_inside_are_explained():
    obs = {**GPU_OBS, "nvidia_smi": {"present": True, "returncode": 255, "output": "Failed to initialize NVML: Unknown Error"},
           "torch": {**CPU_OBS["torch"], "cuda": "12.6",
                     "cuda_error": "RuntimeError: The NVIDIA driver on your system is too old (found version 11040)."}}
    d = facts_from_options(nvidia_smi_text=None, driver="470.199.02", compute_caps=None)
    c = by_id(checks_from_observations(obs, driver=d, expect_nvcc=False, require_gpu=False))
    assert c["nvidia-smi"].status == "fail" and "restart the container" in c["nvidia-smi"].fix
    assert c["torch-cuda"].status == "fail" and "CUDA 11.4" in c["torch-cuda"].detail
    assert c["cuda-vs-driver"].status == "fail"


def test_minor_compat_is_a_warning():
    d = facts_from_options(nvidia_smi_text=None, driver="535.104.05", compute_caps=None)
    c = by_id(checks_from_observations(GPU_OBS, driver=d, expect_nvcc=False, require_gpu=False))
    assert c["cuda-vs-driver"].status == "warn"


def test_low_memlock_warns():
    obs = {**CPU_OBS, "ulimits": {**LIMITS, "memlock": {"soft": 65536, "hard": 65536}}}
    c = by_id(checks_from_observations(obs, driver=None, expect_nvcc=False, require_gpu=False))
    assert c["ulimits"].status == "warn"
