"""GPU knowledge and decisions: parse nvidia-smi, pick image + torch, explain errors, judge verify.

Modules: nvidia_smi (host facts), resolve (the decision), explain (error texts), verify
(checks from in-container observations). The data lives in dlbox/catalog/*.json.
"""
