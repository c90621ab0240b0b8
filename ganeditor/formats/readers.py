"""Explicit imports of every format reader, in the order they are tried."""

from ganeditor.formats import native  # noqa: F401
from ganeditor.formats import ncnn  # noqa: F401,E402
from ganeditor.formats import nvlabs_pkl  # noqa: F401,E402
from ganeditor.formats import torch_pth  # noqa: F401,E402
from ganeditor.formats import rosinality  # noqa: F401,E402
from ganeditor.formats import spandrel_io  # noqa: F401,E402  (last: every torch file the others do not claim)
