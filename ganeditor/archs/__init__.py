"""Networks as plain nn.Modules whose attribute names equal the upstream checkpoint keys.

Importing this package fills the registry (explicit imports, so frozen builds work).
"""

from ganeditor.archs.registry import ARCHS, build, register  # noqa: F401

# Explicit imports fill the registry.
