"""CLI verbs, one module per group. Each module has `register(app)`; cli.py only wires them."""
