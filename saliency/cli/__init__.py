"""The ``saliency`` command line: thin commands mapping onto the stages.

Most commands are generated from the stage registry (:mod:`saliency.cli.stage_command`):
their flags from the stage's config, their output from the result's lines. The hand-written
ones (``demo``, ``run``, ``launch``, ``synth``, ``data``, ``train``, ``compare``, ``predict``)
add what a config cannot say. Library code never prints; the commands here do the talking.
``main(argv)`` returns the exit code, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence

from saliency.cli import compare, crash, data, demo, launch, predict, run, synth, train
from saliency.cli.options import BadValue
from saliency.cli.stage_command import register_stage

HAND_WRITTEN = {"demo": demo, "run": run, "synth": synth, "data": data, "train": train,
                "compare": compare, "predict": predict, "launch": launch}  # fmt: skip
ORDER = ("demo", "run", "launch", "synth", "data", "align", "regions", "train", "adopt", "evaluate",
         "compare", "attributes", "explain", "average", "predict", "share", "ablate", "null",
         "agreement", "validate", "figures", "report", "export")  # fmt: skip


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that carry a message fit for the user: printed as one line, exit code 2.

    Imported when a command runs, so that building the parser (``--help``) stays light."""
    from saliency.data.imageio import ImageReadError
    from saliency.data.manifest import ManifestError

    return (ValueError, ManifestError, FileNotFoundError, ImageReadError, NotADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    from saliency.stages.registry import all_stages

    parser = argparse.ArgumentParser(
        prog="saliency",
        description="Explain face gender classifiers: maps, average faces, region analyses.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    stages = all_stages()
    names = list(ORDER) + [s for s in stages if s not in ORDER]  # other packages' stages
    for name in names:
        if name in HAND_WRITTEN:
            HAND_WRITTEN[name].register(sub)
        else:
            register_stage(sub, name)
    return parser


_PARSERS: dict[tuple[str, ...], argparse.ArgumentParser] = {}  # per sys.path (plugins)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code: 0, 2 for a user's mistake (one line), 1 for an
    unexpected error (one line naming a log with the traceback; ``--debug`` shows it)."""
    argv, debug = crash.debugging(list(sys.argv[1:] if argv is None else argv))
    if argv[:1] == ["--"]:  # `python -m saliency -- COMMAND`, as torchrun's launch form reads
        argv = argv[1:]
    if argv[:1] == ["launch"] and not {"-h", "--help"} & set(argv[1:2]):
        try:  # torchrun's options are not ours to parse (saliency.cli.launch)
            from saliency.stages.registry import all_stages

            return launch.run(argv[1:], [*ORDER, *all_stages()])
        except ValueError as exc:
            print(f"saliency launch: error: {exc}", file=sys.stderr)
            return 2
    key = tuple(sys.path)
    if key not in _PARSERS:  # built once per process: tests call main() hundreds of times
        _PARSERS[key] = build_parser()
    parser = _PARSERS[key]
    try:
        args = parser.parse_args(argv)
    except BadValue as exc:  # a flag's value that its setting refused (cli.options)
        print(f"saliency {argv[0] if argv else ''}: error: {exc}".replace("  ", " "),
              file=sys.stderr)  # fmt: skip
        return 2
    errors = user_errors()
    try:
        with _world(args):
            return int(args.func(args) or 0)
    except errors as exc:
        print(f"saliency {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"saliency {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(crash.report(args.command, argv, exc), file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """A user error's message; one raised in a DataLoader worker comes back wrapped in the
    worker's traceback, whose last line is the original ``Type: message``."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    return last.split(": ", 1)[1] if ": " in last else last


@contextlib.contextmanager
def _world(args: argparse.Namespace) -> Iterator[None]:
    """Under torchrun: this rank's device (``cuda:LOCAL_RANK`` for ``auto`` on GPUs), the
    process group joined, and the output of every rank but 0 silenced (its errors still
    reach stderr). Outside torchrun: nothing."""
    import os

    from saliency.distributed import from_env

    world = from_env()
    if not world.distributed:
        yield
        return
    from saliency.distributed import rank_device, start, stop

    if getattr(args, "device", None):  # unset: a study's own device (cli.run)
        args.device = rank_device(args.device, world)
    start(world, rank_device(getattr(args, "device", None) or "auto", world))
    quiet = None if world.main else open(os.devnull, "w")  # noqa: SIM115
    try:
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            if quiet:
                os.environ["SALIENCY_PROGRESS"] = "0"
            yield
    finally:
        if quiet:
            quiet.close()
        stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
