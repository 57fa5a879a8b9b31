"""Run by torchrun in tests/test_torchrun.py: the saliency command line, except that rank 1
kills itself (SIGKILL, as an out-of-memory kill or a lost node would) right after writing
its ``KILL_AFTER``-th part, so the test can see what an interrupted world leaves."""

import os
import signal
import sys

from saliency import parts

KILL_AFTER = 3

if os.environ.get("RANK") == "1":
    written = parts.Parts.write

    def write(self, a, b, arrays):
        written(self, a, b, arrays)
        write.count += 1
        if write.count == KILL_AFTER:
            os.kill(os.getpid(), signal.SIGKILL)

    write.count = 0
    parts.Parts.write = write

from saliency.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
