"""Side effects on Docker engines. Nothing outside this package runs docker."""
