"""`python -m dlbox`: the same CLI, for machines where dlbox runs from its source tree (scripts/gpu-lane.sh)."""

from dlbox.cli import main

main()
