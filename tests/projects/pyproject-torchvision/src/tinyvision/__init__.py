from tinyvision.models import make_model

__all__ = ["make_model"]
