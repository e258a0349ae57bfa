"""Runs inside the job's container on every node before the real command (stdlib + torch only).

    torchrun ... preflight_inside.py   # local rank 0: this node's GPUs, CUDA init, a matmul, /dev/shm,
                                       # memlock; then every rank: one all-reduce across all nodes
    python preflight_inside.py local   # the node's checks alone (Kubernetes pods, before torchrun)

Each result is one line `DLBOX-PREFLIGHT|<node>|<check>|<ok|warn|fail>|<detail>` that dlbox reads
back from the job log; a failing check exits 3 so `srun --kill-on-bad-exit` stops every node.
The all-reduce ends with a barrier and os._exit: torch 2.13's gloo/TCPStore threads sometimes
abort at interpreter exit ("terminate called without an active exception", SIGABRT, so torchrun
reports ChildFailedError) after all work is done: about 1 run in 5 in 2-node gloo runs with
torch 2.13.0+cpu on a harness like scripts/slurm-world.sh. dlbox's own check must not.
"""

import os
import resource
import socket
import sys
import time

NODE = socket.gethostname().split(".")[0]


def say(check, status, detail):
    print(f"DLBOX-PREFLIGHT|{NODE}|{check}|{status}|{detail}", flush=True)
    return status != "fail"


def local():
    ok = True
    want = int(os.environ.get("DLBOX_GPUS_PER_NODE", "0"))
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return say("torch", "fail", f"import torch failed: {exc}")
    if want:
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        ok &= say("gpus", "ok" if n == want else "fail", f"{n} GPU(s) visible, {want} requested")
        if n:
            try:
                t0 = time.time()
                a = torch.randn(2048, 2048, device="cuda")
                (a @ a).sum().item()
                torch.cuda.synchronize()
                ok &= say("cuda", "ok", f"CUDA init + 2048x2048 matmul on {torch.cuda.get_device_name(0)} in {time.time() - t0:.2f} s")
            except Exception as exc:  # noqa: BLE001
                ok &= say("cuda", "fail", f"CUDA init or matmul failed: {str(exc).splitlines()[0][:200]}")
    else:
        a = torch.randn(256, 256)
        ok &= say("cpu", "ok", f"torch {torch.__version__} matmul ok ({float((a @ a).sum()):.1f}); no GPU requested")
    st = os.statvfs("/dev/shm")
    shm_gib = st.f_blocks * st.f_frsize / 2**30
    need = float(os.environ.get("DLBOX_MIN_SHM_GIB", "1"))
    ok &= say("shm", "ok" if shm_gib >= need else "fail", f"/dev/shm {shm_gib:.1f} GiB (need {need:g})")
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if want and hard != resource.RLIM_INFINITY:
        say("memlock", "warn", f"memlock limit {hard // 1024} KiB: NCCL over InfiniBand wants unlimited")
    else:
        say("memlock", "ok", "unlimited" if hard == resource.RLIM_INFINITY else f"{hard // 1024} KiB (no GPU: fine)")
    say("iface", "ok", f"{os.environ.get('GLOO_SOCKET_IFNAME', '?')} towards {os.environ.get('DLBOX_HEAD_IP', '?')}")
    return ok


def allreduce():
    import datetime

    import torch
    import torch.distributed as dist

    backend = "nccl" if int(os.environ.get("DLBOX_GPUS_PER_NODE", "0")) and torch.cuda.is_available() else "gloo"
    t0 = time.time()
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=120))
    world = dist.get_world_size()
    dev = torch.device("cpu")
    if backend == "nccl":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    x = torch.ones(1 << 20, device=dev)
    t1 = time.time()
    dist.all_reduce(x)
    good = bool(torch.all(x == world))
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        say("allreduce", "ok" if good else "fail",
            f"{backend} all-reduce of 4 MiB over {world} ranks: init {t1 - t0:.2f} s, reduce {time.time() - t1:.3f} s")
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0 if good else 3)


if __name__ == "__main__":
    if sys.argv[1:] == ["local"]:
        sys.exit(0 if local() else 3)
    # one interpreter start per rank for both parts (torch's import is most of the preflight's time)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and not local():
        sys.stdout.flush()
        os._exit(3)   # before the rendezvous: srun --kill-on-bad-exit stops the other nodes
    allreduce()
