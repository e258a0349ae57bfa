"""The digits model trained with DistributedDataParallel on several nodes (gloo on CPU, nccl on GPU).

Run it through torchrun; `dlbox submit --cluster NAME -N 2 -- python train_ddp.py` does that on a
Slurm cluster (rendezvous, interfaces and world size come from dlbox's PET_* variables).
Each rank trains on its own shard; at the end every rank checks that its parameters equal every
other rank's (all-reduce MAX == MIN), prints one line, and rank 0 writes outputs/metrics-ddp.json.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

EPOCHS = int(os.environ.get("EPOCHS", "5"))


def main() -> int:
    gpu = torch.cuda.is_available()
    dist.init_process_group("nccl" if gpu else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if gpu else torch.device("cpu")
    if gpu:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x[rank::world] / 16.0, dtype=torch.float32, device=device)   # this rank's shard
    y = torch.tensor(y[rank::world], dtype=torch.long, device=device)
    model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(device))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    t0 = time.perf_counter()
    for epoch in range(EPOCHS):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()
            if rank == 0 and epoch == 0 and i == 0:
                print(f"first step done at {time.time():.3f} (unix time)", flush=True)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    same = bool(torch.equal(hi, lo))
    print(f"rank={rank}/{world} host={socket.gethostname()} loss={loss.item():.4f} "
          f"params_sum={flat.sum().item():.6f} params_equal_across_ranks={same}", flush=True)
    if rank == 0:
        Path("outputs").mkdir(exist_ok=True)
        Path("outputs/metrics-ddp.json").write_text(json.dumps(
            {"world_size": world, "loss": round(loss.item(), 4), "params_equal_across_ranks": same,
             "seconds": round(time.perf_counter() - t0, 2)}) + "\n")
    dist.barrier()
    dist.destroy_process_group()
    # torch 2.13's gloo/TCPStore threads sometimes abort at interpreter exit after all work is done
    # ("terminate called without an active exception"): leave without the interpreter's teardown.
    sys.stdout.flush()
    os._exit(0 if same else 1)


if __name__ == "__main__":
    raise SystemExit(main())
