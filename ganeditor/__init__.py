"""GAN Editor: edit photos with generative adversarial networks."""

import os

__version__ = "0.1.0"
APP_NAME = "GAN Editor"

# torch's CPU allocator backs blocks of 2 MiB and more with transparent huge pages when this is set
# (madvise; read at its first large allocation, so it is set before any of ours).  Full-resolution runs
# allocate and free activations of tens to hundreds of MiB per layer, and with 4-KiB pages each one is
# faulted in again page by page: a 640x480 SRVGG x4 upscale took 1.1 M faults, a third of its CPU time.
# bench/RESULTS.md "Page faults" has the A/B; THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
