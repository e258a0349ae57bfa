"""dlbox: Docker as the deep-learning environment."""

__version__ = "0.1.0"
