"""Training loop in the style of nanoGPT's train.py: `compile = True` unless --compile=False."""
import sys

import numpy as np
import torch
from model import TinyMLP

max_iters, compile = 3, True
for arg in sys.argv[1:]:                      # --max_iters=2 --compile=False
    key, _, value = arg.lstrip("-").partition("=")
    globals()[key] = type(globals()[key])(eval(value) if value in ("True", "False") else value)

torch.manual_seed(0)
model = TinyMLP()
if compile:
    print("compiling the model... (takes a ~minute)")
    model = torch.compile(model)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
data = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 32)).astype("float32"))
for it in range(int(max_iters)):
    loss = ((model(data) - data) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"train ok iters={max_iters} compiled={compile} loss={loss.item():.4f}")
