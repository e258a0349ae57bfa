import torchvision


def make_model(num_classes: int = 10):
    """A torchvision ResNet-18 with random weights (no download)."""
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)
