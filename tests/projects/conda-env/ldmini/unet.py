import torch
from einops import rearrange


class TinyDenoiser(torch.nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return rearrange(y, "b c h w -> b (h w) c")
