"""Notebooks, editors and web apps on top of the project's environment image.

`jupyter` starts JupyterLab (token always required), `web` starts a `[run] command` that
serves on `[run] ports` and waits until it answers, `files` writes generated files without
ever silently overwriting a user's, `wait` is the readiness probe they share.
"""
