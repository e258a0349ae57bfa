import gradio as gr
import torch
from PIL import Image
from torchvision import transforms

LABELS = ["cat", "dog", "bird"]
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, len(LABELS))).eval()
prep = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])


def predict(img: Image.Image) -> dict:
    with torch.no_grad():
        p = torch.softmax(model(prep(img).unsqueeze(0))[0], 0)
    return {label: float(p[i]) for i, label in enumerate(LABELS)}


demo = gr.Interface(fn=predict, inputs=gr.Image(type="pil"), outputs=gr.Label(num_top_classes=3))

if __name__ == "__main__":
    demo.launch(server_name="0.0.0.0")
