"""How fast the command line answers: median wall time of `saliency --help` and of each
command's `--help` over 5 runs, against a bare interpreter and `import torch` measured in
the same run (the goal: under 1 s, i.e. nowhere near the cost of importing torch).

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ["", "train", "explain", "ablate", "average", "share", "evaluate"]


def median_seconds(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    exe = Path(sys.executable).with_name("saliency")
    bare = median_seconds([sys.executable, "-c", "pass"], args.repeats)
    torch_s = median_seconds([sys.executable, "-c", "import torch"], args.repeats)
    print(f"python -c pass: {bare:.3f} s; python -c 'import torch': {torch_s:.3f} s")
    print(f"{'command':>24s}  median s  x bare  x import-torch")
    worst = 0.0
    for c in COMMANDS:
        argv = [str(exe), *([c] if c else []), "--help"]
        s = median_seconds(argv, args.repeats)
        worst = max(worst, s)
        name = f"saliency {c} --help".replace("  ", " ")
        print(f"{name:>24s}  {s:8.3f}  {s / bare:6.2f}  {s / torch_s:13.2f}")
    print(f"slowest: {worst:.3f} s ({'under' if worst < 1 else 'OVER'} the 1 s goal)")


if __name__ == "__main__":
    main()
