"""The environment on clusters: the image in the forms cluster runtimes take, and Slurm jobs that run it.

    runtime.py   the OCI runtime config (config.json) gpuenv writes: user, workspace, shm, network, GPUs (pure)
    fit.py       the image's labels (minimum driver, CUDA, architectures) against a node's driver and GPUs
    export.py    `gpuenv export`: an OCI image layout and a runtime bundle (skopeo + umoci), what else runs it
    slurm.py     job scripts and the partition's GRES (pure), and sbatch/squeue/scancel/sinfo
    node.py      the job's first step on its node: probe, check, the job's own config.json
"""
