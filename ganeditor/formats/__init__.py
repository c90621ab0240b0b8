"""Checkpoint formats: detection by content, safe readers, and our own safetensors format.

Every reader turns a file into a ``Checkpoint``: a dict of networks by role (``G_ema``, ``G``,
``D``, ``G_A`` ...) built from the registry, plus JSON-able metadata.  No reader executes code
from a file: pickles go through restricted unpicklers, torch files through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from ganeditor.formats.base import Checkpoint, FormatReader, register_reader  # noqa: F401
from ganeditor.formats.loading import load_checkpoint, sniff  # noqa: F401
