"""The host as `dlbox plan`'s what-if flags describe it (`--nvidia-smi`, `--driver`, `--compute-cap`):
another machine's GPU facts on top of what was observed, so any machine can be planned for here."""

from __future__ import annotations

from dataclasses import replace

from dlbox.host import EngineFacts, Host
from dlbox.host.nvidia_smi import facts_from_options


def what_if(host: Host, *, nvidia_smi_text: str | None = None, driver: str | None = None,
            compute_caps: list[str] | None = None) -> Host:
    """HOST with its driver replaced by the flags' (unchanged when none is given). Without an
    observed engine, the other machine's engine is assumed able to hand out its GPU."""
    if not (nvidia_smi_text or driver or compute_caps):
        return host
    facts = facts_from_options(nvidia_smi_text=nvidia_smi_text, driver=driver, compute_caps=compute_caps)
    host = replace(host, driver=facts)
    if host.engine is None:
        host = replace(host, engine=EngineFacts(runtimes=("nvidia", "runc")))
    return host
