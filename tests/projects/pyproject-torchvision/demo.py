"""Smallest entry point: build the model, run one image through it, use torchvision's nms op."""
import torch
import torchvision
import yaml
from tinyvision import make_model

cfg = yaml.safe_load("num_classes: 5")
model = make_model(cfg["num_classes"]).eval()
with torch.no_grad():
    out = model(torch.randn(1, 3, 64, 64))
keep = torchvision.ops.nms(torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11.]]), torch.tensor([0.9, 0.8]), 0.5)
print("tinyvision ok", tuple(out.shape), keep.tolist(), torchvision.__version__)
