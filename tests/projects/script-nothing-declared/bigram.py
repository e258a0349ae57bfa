"""A character-level bigram language model, trained for a few steps on a built-in text."""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200)
args = parser.parse_args()

text = "hello world, hello dlbox, hello containers " * 20
chars = sorted(set(text))
ix = np.array([chars.index(c) for c in text])
xs, ys = torch.from_numpy(ix[:-1]), torch.from_numpy(ix[1:])
W = torch.zeros((len(chars), len(chars)), requires_grad=True)
for step in range(args.steps):
    loss = F.cross_entropy(W[xs], ys)
    W.grad = None
    loss.backward()
    W.data -= 10 * W.grad
print(f"bigram ok loss={loss.item():.3f} steps={args.steps}")
