import torch
import torch.nn as nn


class TinyMLP(nn.Module):
    def __init__(self, n: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n, 4 * n), nn.GELU(), nn.Linear(4 * n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)
