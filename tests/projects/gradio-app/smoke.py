"""Smallest entry point that ends: build the app and call its function once (no server)."""
from PIL import Image

import app

print("gradio ok", sorted(app.predict(Image.new("RGB", (40, 40))).keys()), app.gr.__version__)
