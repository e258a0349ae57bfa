"""Getting an image from this machine to another: archives, registries, SSH deploys, snapshots.

- `archive`: `docker save` → zstd file with a SHA-256 sidecar, and back (verified first).
- `push`: tag and push to a registry.
- `layers`: the image's layers as byte streams, without `docker save` when the engine allows.
- `deploy`: send only the layers a server's engine lacks, over SSH, resumable and verified;
  `codec` (wire compression, chosen by measured link and CPU), `send` (one layer into the
  server's staging), `load` (docker load while later layers still cross), `remote` (the server-side
  scripts), `staging` (the per-server lock, checks of staged layers).
- `snapshot`: `docker commit` a running project container, labelled with its origin.
"""
