"""Smallest entry point: a matrix product in torch checked against numpy."""
import numpy as np
import torch

a = np.arange(6, dtype="float32").reshape(2, 3)
t = torch.from_numpy(a) @ torch.from_numpy(a.T)
assert np.allclose(t.numpy(), a @ a.T)
print("uv ok", t.tolist())
