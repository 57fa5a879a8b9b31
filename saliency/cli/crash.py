"""What a command does with an error nobody foresaw: one line for the user, the traceback in a
log outside any run folder.

The line names the command, the exception's type and first line, and the log's path;
``--debug`` (anywhere on the command line, or ``SALIENCY_DEBUG=1``) lets the exception through
with its traceback instead. Logs go to ``$SALIENCY_LOG_DIR``, else the user's cache
(``$XDG_CACHE_HOME/saliency/logs`` or ``~/.cache/saliency/logs``), else the working folder.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

__all__ = ["DEBUG_FLAG", "debugging", "log_folders", "report"]

DEBUG_FLAG = "--debug"


def debugging(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug``, and whether tracebacks should be shown (the flag, or
    ``SALIENCY_DEBUG=1`` in the environment)."""
    rest = [a for a in argv if a != DEBUG_FLAG]
    return rest, len(rest) != len(argv) or os.environ.get("SALIENCY_DEBUG") == "1"


def log_folders() -> list[Path]:
    """Where a crash log may go, in order of preference."""
    if os.environ.get("SALIENCY_LOG_DIR"):
        return [Path(os.environ["SALIENCY_LOG_DIR"])]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [Path(cache) / "saliency" / "logs", Path.cwd()]


def report(command: str, argv: list[str], exc: BaseException) -> str:
    """Write ``exc``'s traceback (with the command line) to a new log and return the line to
    print: ``saliency COMMAND: unexpected TYPE: MESSAGE (traceback in PATH; --debug shows
    it)``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "saliency " + " ".join(argv) + "\n\n" + "".join(traceback.format_exception(exc))
    where = None
    for folder in log_folders():
        path = folder / f"saliency-{stamp}-{command}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError:
            continue
        where = path
        break
    message = (str(exc).strip().splitlines() or [""])[0][:200]
    kind = type(exc).__name__ + (f": {message}" if message else "")
    log = f"traceback in {where}" if where else "no folder could take the traceback"
    return f"saliency {command}: unexpected {kind} ({log}; {DEBUG_FLAG} shows it)"
