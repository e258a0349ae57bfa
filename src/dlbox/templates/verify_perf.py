#!/usr/bin/env python3
"""Run inside a dlbox container (or straight on a GPU host): print ONE JSON object of raw
performance measurements. It judges nothing: dlbox.doctor.perf turns them into checks.

Stand-alone (stdlib + torch). Measures, on every visible GPU (at most 8):
- matmul TFLOP/s for bf16, fp16 and tf32 (an N x N x N product, mean of timed runs after warm-up);
- host->device copy GB/s from pinned and from pageable memory (the memlock effect);
- an NCCL all-reduce across the visible GPUs (bus bandwidth, as nccl-tests defines it);
- a DataLoader with worker processes, whose batches travel through /dev/shm;
and records what explains a low figure: nvidia-smi's power limit, clocks and PCIe link,
the memlock limit and the size of /dev/shm.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

MAX_GPUS = 8


def _err():
    return traceback.format_exc(limit=1)[-600:]


def smi_query():
    """Per-GPU facts that explain low figures (best effort; missing fields are skipped)."""
    fields = ["index", "name", "power.limit", "power.max_limit", "clocks.sm", "clocks.max.sm",
              "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
              "pcie.link.width.max", "temperature.gpu", "clocks_throttle_reasons.active"]
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    for fs in (fields, fields[:-1], fields[:2]):
        try:
            p = subprocess.run([exe, "--query-gpu=" + ",".join(fs), "--format=csv,nounits"],
                               capture_output=True, text=True, timeout=30)
        except Exception:
            return []
        if p.returncode == 0:
            lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
            head = [h.strip().split(" [")[0] for h in lines[0].split(",")]
            return [dict(zip(head, (v.strip() for v in ln.split(",")))) for ln in lines[1:]]
    return []


def matmul(torch, dev, n, dtype_name, iters=10, warm=3):
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}
    torch.backends.cuda.matmul.allow_tf32 = dtype_name == "tf32"
    a = torch.randn(n, n, device=dev, dtype=dtypes[dtype_name])
    b = torch.randn(n, n, device=dev, dtype=dtypes[dtype_name])
    for _ in range(warm):
        a @ b
    torch.cuda.synchronize(dev)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        a @ b
    end.record()
    torch.cuda.synchronize(dev)
    seconds = start.elapsed_time(end) / 1000.0
    del a, b
    torch.backends.cuda.matmul.allow_tf32 = False
    return round(2.0 * n ** 3 * iters / seconds / 1e12, 1)


def h2d(torch, dev, mib=256, iters=5):
    out = {"bytes": mib << 20}
    for kind in ("pinned", "pageable"):
        try:
            src = torch.empty(mib << 20, dtype=torch.uint8, pin_memory=(kind == "pinned"))
            dst = torch.empty(mib << 20, dtype=torch.uint8, device=dev)
            dst.copy_(src, non_blocking=True)
            torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            for _ in range(iters):
                dst.copy_(src, non_blocking=True)
            torch.cuda.synchronize(dev)
            out[kind + "_gbps"] = round((mib << 20) * iters / (time.perf_counter() - t0) / 1e9, 1)
            del src, dst
        except Exception:
            out[kind + "_error"] = _err()
    return out


# The all-reduce ranks run as fresh interpreters on this file-less source: the probe itself
# arrives on stdin (`python -`), which multiprocessing's spawn cannot re-import.
_RANK = r"""
import json, sys, time, traceback
rank, world, init_file, mib, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
try:
    import torch
    import torch.distributed as dist
    dev = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
        dev = rank
    dist.init_process_group(backend, init_method="file://" + init_file, rank=rank, world_size=world)
    x = torch.ones((mib << 20) // 4, dtype=torch.float32, device=dev)
    sync = torch.cuda.synchronize if backend == "nccl" else (lambda: None)
    for _ in range(3):
        dist.all_reduce(x)
    sync()
    iters = 10
    t0 = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(x)
    sync()
    dt = (time.perf_counter() - t0) / iters
    ok = bool(x[0].item() > 0)
    dist.destroy_process_group()
    algbw = (mib << 20) / dt / 1e9
    out = {"ok": ok, "world": world, "backend": backend, "bytes": mib << 20, "algbw_gbps": round(algbw, 1),
           "busbw_gbps": round(algbw * 2 * (world - 1) / world, 1)}
    if backend == "nccl":
        out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
except Exception:
    out = {"ok": False, "world": world, "backend": backend, "error": traceback.format_exc(limit=2)[-800:]}
print(json.dumps(out))
"""


def allreduce(world, mib=256, backend="nccl", timeout=180):
    tmp = tempfile.mkdtemp(prefix="dlbox-allreduce-")
    script, init_file = os.path.join(tmp, "rank.py"), os.path.join(tmp, "init")
    with open(script, "w") as f:
        f.write(_RANK)
    procs = [subprocess.Popen([sys.executable, script, str(r), str(world), init_file, str(mib), backend],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    results = []
    deadline = time.time() + timeout
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            results.append({"ok": False, "world": world, "error": f"no answer in {timeout} s: {err[-400:]}"})
            continue
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            results.append({"ok": False, "world": world, "error": (err or out)[-800:]})
    shutil.rmtree(tmp, ignore_errors=True)
    bad = next((r for r in results if not r.get("ok")), None)
    return bad or results[0]


class _Images:
    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.torch.full((3, 224, 224), float(i % 7))


def dataloader(torch, workers=4, batches=40, batch=64):
    from torch.utils.data import DataLoader
    out = {"workers": workers, "batch_bytes": batch * 3 * 224 * 224 * 4}
    try:
        dl = DataLoader(_Images(torch, batches * batch), batch_size=batch, num_workers=workers)
        t0 = time.perf_counter()
        seen = 0
        for x in dl:
            seen += x.numel() * 4
        dt = time.perf_counter() - t0
        out.update(ok=True, gbps=round(seen / dt / 1e9, 2), seconds=round(dt, 2))
    except Exception:
        out.update(ok=False, error=_err())
    return out


def main():
    obs = {"python": sys.version.split()[0]}
    try:
        st = os.statvfs("/dev/shm")
        obs["shm_bytes"] = st.f_frsize * st.f_blocks
    except OSError:
        obs["shm_bytes"] = None
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    obs["memlock"] = {"soft": None if soft == resource.RLIM_INFINITY else soft,
                      "hard": None if hard == resource.RLIM_INFINITY else hard}
    try:
        import torch
    except Exception:
        obs["torch"] = {"present": False, "error": _err()}
        print(json.dumps(obs))
        return
    obs["torch"] = {"present": True, "version": torch.__version__, "cuda": torch.version.cuda}
    if not torch.cuda.is_available():
        obs["cuda_available"] = False
        if os.environ.get("DLBOX_PERF_GLOO"):  # exercise the all-reduce plumbing without a GPU
            obs["allreduce"] = allreduce(2, mib=4, backend="gloo")
        obs["dataloader"] = dataloader(torch)
        print(json.dumps(obs))
        return
    obs["cuda_available"] = True
    n = int(os.environ.get("DLBOX_PERF_N", "8192"))
    gpus = []
    for i in range(min(torch.cuda.device_count(), MAX_GPUS)):
        g = {"index": i, "name": torch.cuda.get_device_name(i),
             "capability": "%d.%d" % torch.cuda.get_device_capability(i), "matmul_n": n, "matmul_tflops": {}}
        for dt in ("bf16", "fp16", "tf32"):
            try:
                g["matmul_tflops"][dt] = matmul(torch, i, n, dt)
            except Exception:
                g.setdefault("matmul_errors", {})[dt] = _err()
        g["h2d"] = h2d(torch, i)
        gpus.append(g)
        torch.cuda.empty_cache()
    obs["gpus"] = gpus
    obs["nvidia_smi"] = smi_query()  # read just after the load, when clocks and link are up
    world = len(gpus)
    obs["allreduce"] = allreduce(world) if world >= 1 else None
    obs["dataloader"] = dataloader(torch)
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
