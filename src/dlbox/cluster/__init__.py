"""Beyond one machine: Slurm clusters (real: sbatch/squeue/sacct/scancel) for dlbox images.

Pipeline, one module per room:
  config.py    the clusters a user added (`dlbox cluster add`), as plain data
  login.py     the one door to the cluster: a shell on the login node, local or over ssh
  slurm.py     sbatch/squeue/scontrol/sacct/scancel argv and their outputs, parsed
  probe.py     what every node has (runtimes, GPUs, drivers, shm, memlock) → ClusterFacts → Host
  runtime.py   the container step for pyxis, Apptainer, Docker, Podman, Slurm OCI (pure)
  sbatch.py    JobPlan → the sbatch script text (pure, ejectable with --render)
  images.py    the image onto the nodes: content-addressed squashfs, or layer deploy per node
  jobs.py      submit / jobs / logs / cancel / verify: the use cases the verbs call
"""
