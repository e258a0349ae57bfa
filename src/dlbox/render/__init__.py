"""Rendering: a Plan in, text out (Dockerfile, devcontainer.json, compose.yaml).

Renderers never probe the host and never decide: everything they print is in the Plan.
"""
