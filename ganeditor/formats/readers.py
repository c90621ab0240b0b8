"""Explicit imports of every format reader, in the order they are tried."""

from ganeditor.formats import native  # noqa: F401
