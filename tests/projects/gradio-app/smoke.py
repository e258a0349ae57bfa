"""Smallest entry point that ends: build the app and call its function once (no server)."""
import app
from PIL import Image

print("gradio ok", sorted(app.predict(Image.new("RGB", (40, 40))).keys()), app.gr.__version__)
