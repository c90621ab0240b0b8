"""``python -m ganeditor`` and the bundle's entry point (``packaging/ganeditor.spec``)."""

import sys

if sys.argv[1:] == ["--version"]:  # answered before ganeditor.cli, whose commands import torch (seconds)
    from ganeditor import __version__

    print(f"ganeditor {__version__}")
    raise SystemExit(0)

from ganeditor.cli import main  # noqa: E402 - after the --version answer above

raise SystemExit(main())
