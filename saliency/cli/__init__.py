"""The ``saliency`` command line: thin commands mapping onto library functions.

Library code never prints; the commands here do the talking. ``main(argv)`` returns the
exit code, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from saliency.cli import (
    ablate,
    adopt,
    agreement,
    align,
    average,
    data,
    demo,
    evaluate,
    explain,
    export,
    figures,
    null,
    predict,
    regions,
    run,
    share,
    synth,
    train,
    validate,
)

COMMANDS = (
    demo,
    run,
    synth,
    data,
    align,
    regions,
    train,
    adopt,
    evaluate,
    explain,
    average,
    predict,
    share,
    ablate,
    null,
    agreement,
    validate,
    figures,
    export,
)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that carry a message fit for the user: printed as one line, exit code 2.

    Imported when a command runs, so that building the parser (``--help``) stays light."""
    from saliency.data.imageio import ImageReadError
    from saliency.data.manifest import ManifestError

    return (ValueError, ManifestError, FileNotFoundError, ImageReadError, NotADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saliency",
        description="Explain face gender classifiers: maps, average faces, region analyses.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    errors = user_errors()
    try:
        return int(args.func(args) or 0)
    except errors as exc:
        print(f"saliency {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"saliency {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
