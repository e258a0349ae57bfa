"""Smallest entry point: one denoising step of a tiny model configured with OmegaConf."""
import torch
from ldmini.unet import TinyDenoiser
from omegaconf import OmegaConf

cfg = OmegaConf.create({"model": {"channels": 4}, "size": 8})
model = TinyDenoiser(cfg.model.channels)
out = model(torch.randn(1, cfg.model.channels, cfg.size, cfg.size))
print("sample ok", tuple(out.shape))
