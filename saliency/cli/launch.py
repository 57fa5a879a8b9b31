"""``saliency launch [torchrun's options] COMMAND ...``: torchrun, typed without the ``--``.

The launch form is ``torchrun [its options] -m saliency -- COMMAND ...``: without the ``--``,
torchrun's parser reads our ``--run`` as an abbreviation of its ``--run-path`` and exits
before any process starts (pytorch/pytorch #120601). ``launch`` takes torchrun's options up
to the first word that is a saliency command, and calls torchrun's own entry point
(``torch.distributed.run``) with them, ``-m saliency --`` and the command. With no
rendezvous or node options it adds ``--standalone`` (one machine, a free port).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

RENDEZVOUS = ("--standalone", "--nnodes", "--rdzv", "--master", "--node", "--node-rank")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch",
        help="run a command under torchrun: saliency launch --nproc_per_node 2 explain ...",
        description="torchrun's options, then the command and its flags, as typed: "
        "`saliency launch --nproc_per_node 4 explain --run R`. The same as `torchrun "
        "--standalone --nproc_per_node 4 -m saliency -- explain --run R`.",
    )
    p.add_argument("torchrun_options_and_command", nargs=argparse.REMAINDER,
                   metavar="[TORCHRUN OPTIONS] COMMAND ...")  # fmt: skip
    # saliency.cli.main hands `launch ...` to run() before parsing (torchrun's options are
    # not ours to parse); this parser gives --help and the command list
    p.set_defaults(func=None)


def split(argv: Sequence[str], commands: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` cut at the first saliency command (or at ``--``): torchrun's options, and
    the command with its flags."""
    argv = list(argv)
    for k, word in enumerate(argv):
        if word == "--":
            return argv[:k], argv[k + 1 :]
        if word in commands:
            return argv[:k], argv[k:]
    return argv, []


def torchrun_args(options: list[str], command: list[str]) -> list[str]:
    """What torchrun's entry point is given: the options (``--standalone`` added when none
    says how the processes meet), ``-m saliency --`` and the command."""
    if not any(o.startswith(RENDEZVOUS) for o in options):
        options = ["--standalone", *options]
    return [*options, "-m", "saliency", "--", *command]


def run(argv: Sequence[str], commands: Sequence[str]) -> int:
    """Launch ``argv`` (torchrun's options, then one of ``commands`` with its flags)."""
    options, command = split(argv, [c for c in commands if c != "launch"])
    if not command:
        raise ValueError(
            "name the command to launch after torchrun's options, e.g. `saliency launch "
            "--nproc_per_node 2 explain --run RUN`"
        )
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(torchrun_args(options, command))
    except ChildFailedError as exc:  # torchrun has printed which rank failed and why
        print(f"saliency launch: {command[0]} failed on {len(exc.failures)} rank(s)",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
