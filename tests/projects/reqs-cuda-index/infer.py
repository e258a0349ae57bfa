"""Smallest entry point: a forward pass of a small MLP on random data."""
import numpy as np
import torch
from tqdm import tqdm

model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
x = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 16)).astype("float32"))
for _ in tqdm(range(2)):
    y = model(x)
print("infer ok", tuple(y.shape), torch.__version__)
