"""Train a small MLP on scikit-learn's bundled 8x8 digits (no download), on GPU if present.

Writes outputs/metrics.json and outputs/model.pt. Exit status 1 if accuracy is implausibly low.
"""

import json
import os
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

EPOCHS = int(os.environ.get("EPOCHS", "30"))


def main() -> int:
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=0)
    as_t = lambda a, dt: torch.tensor(a, dtype=dt, device=device)  # noqa: E731
    xtr, ytr, xte, yte = as_t(x_train, torch.float32), as_t(y_train, torch.long), as_t(x_test, torch.float32), as_t(y_test, torch.long)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(EPOCHS):
        for i in range(0, len(xtr), 128):
            opt.zero_grad()
            loss = loss_fn(model(xtr[i : i + 128]), ytr[i : i + 128])
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(xte).argmax(1) == yte).float().mean().item()
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    metrics = {"device": str(device), "torch": torch.__version__, "epochs": EPOCHS,
               "accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - t0, 2)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    torch.save(model.state_dict(), out / "model.pt")
    print(json.dumps(metrics))
    return 0 if accuracy > 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
