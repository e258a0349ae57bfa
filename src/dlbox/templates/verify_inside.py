#!/usr/bin/env python3
"""Run inside a dlbox container: print ONE JSON object of raw observations.

Stand-alone (stdlib only; torch imported only if installed). It judges nothing: dlbox turns
these observations into checks (dlbox.doctor.container.checks_from_observations) on the host.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import traceback


def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return {"present": True, "returncode": p.returncode, "output": (p.stdout + p.stderr)[-4000:]}
    except FileNotFoundError:
        return {"present": False, "returncode": None, "output": ""}
    except Exception as exc:  # timeout, permission
        return {"present": True, "returncode": None, "output": repr(exc)}


def limit(name):
    soft, hard = resource.getrlimit(getattr(resource, name))
    conv = lambda v: None if v == resource.RLIM_INFINITY else v  # None = unlimited
    return {"soft": conv(soft), "hard": conv(hard)}


def torch_obs():
    out = {"present": False}
    try:
        import torch
    except Exception as exc:
        out["error"] = "" if isinstance(exc, ModuleNotFoundError) else repr(exc)
        return out
    out.update(present=True, version=torch.__version__, cuda=torch.version.cuda)
    try:
        a = torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) / 4096.0
        cpu = a @ a.T
        out["cpu_matmul_ok"] = bool(torch.isfinite(cpu).all()) and abs(float(cpu[0, 0]) - float((a[0] * a[0]).sum())) < 1e-3
    except Exception as exc:
        out["cpu_matmul_ok"], out["cpu_matmul_error"] = False, repr(exc)
    try:
        out["cuda_available"] = bool(torch.cuda.is_available())
        out["device_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
        out["devices"] = [
            {"name": torch.cuda.get_device_name(i),
             "capability": "%d.%d" % torch.cuda.get_device_capability(i)}
            for i in range(out["device_count"])
        ]
        out["arch_list"] = torch.cuda.get_arch_list() if out["cuda_available"] else []
        if out["cuda_available"]:
            gpu = (a.cuda() @ a.cuda().T).cpu()
            out["gpu_matmul_max_abs_diff"] = float((gpu - cpu).abs().max())
            out["gpu_matmul_ok"] = out["gpu_matmul_max_abs_diff"] < 1e-2
    except Exception:
        out["cuda_error"] = traceback.format_exc(limit=2)[-2000:]
    return out


def main():
    try:
        st = os.statvfs("/dev/shm")
        shm = st.f_frsize * st.f_blocks
    except OSError:
        shm = None
    obs = {
        "python": sys.version.split()[0],
        "nvidia_smi": run(["nvidia-smi"]) if shutil.which("nvidia-smi") else {"present": False, "returncode": None, "output": ""},
        "nvcc": run(["nvcc", "--version"]) if shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc") else {"present": False, "returncode": None, "output": ""},
        "torch": torch_obs(),
        "shm_bytes": shm,
        "ulimits": {"memlock": limit("RLIMIT_MEMLOCK"), "stack": limit("RLIMIT_STACK"), "nofile": limit("RLIMIT_NOFILE")},
        "env": {k: os.environ.get(k) for k in ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_REQUIRE_CUDA", "CUDA_VERSION")},
    }
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
