"""A tiny torch model behind a web page, on port 7860 (the port of the tutorials' gradio demo).

The model is a two-layer network trained at start (under a second on a CPU) to tell the two
half-moons of a synthetic data set apart; the page sends a point and shows the prediction.
Only torch and the standard library: the image builds without anything but the torch wheel.

  GET  /            the page
  GET  /healthz     "ok" once the model is trained
  POST /predict     {"x": 0.5, "y": 0.2} → {"label": 1, "p": 0.93, "device": "cpu"}
"""

from __future__ import annotations

import json
import math
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PORT = int(os.environ.get("PORT", "7860"))

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>dlbox webapp</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>Two moons</h1><p>A small torch model running on <b>{device}</b>. Which moon is the point on?</p>
<form id="f">x <input name="x" value="0.5" size="6"> y <input name="y" value="0.25" size="6">
<button>predict</button></form><pre id="out"></pre>
<script>
document.getElementById("f").onsubmit = async (e) => {{
  e.preventDefault();
  const d = new FormData(e.target);
  const r = await fetch("predict", {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{x: parseFloat(d.get("x")), y: parseFloat(d.get("y"))}})}});
  document.getElementById("out").textContent = JSON.stringify(await r.json(), null, 2);
}};
</script></body></html>"""


def moons(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) + 0.1 * torch.randn(2 * n, 2, generator=generator)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return x, y


def train() -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    x, y = moons(512, g)
    x, y = x.to(DEVICE), y.to(DEVICE)
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    return model


MODEL = train()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif self.path == "/":
            self._send(200, PAGE.format(device=DEVICE).encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/predict":
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            point = torch.tensor([[float(body["x"]), float(body["y"])]], device=DEVICE)
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, json.dumps({"error": f"expected {{\"x\": number, \"y\": number}}: {exc}"}).encode(),
                       "application/json")
            return
        with torch.no_grad():
            p = torch.softmax(MODEL(point), 1)[0]
        label = int(p.argmax())
        out = {"label": label, "p": round(float(p[label]), 4), "device": DEVICE}
        self._send(200, json.dumps(out).encode(), "application/json")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)   # 0.0.0.0 inside: docker publishes it on 127.0.0.1
    print(f"serving the two-moons model on {DEVICE} at http://0.0.0.0:{PORT}/", flush=True)
    server.serve_forever()
