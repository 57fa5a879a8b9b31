"""One writer per run folder: ``RUN/.saliency.lock`` names the command writing the run.

:func:`hold` creates the lock file atomically (``O_CREAT | O_EXCL``) with the command, host,
process id, start time and *owner*; a second owner gets :class:`RunBusy` (one line naming
the first), or with ``wait`` polls until the run is free. The owner is the job: under
torchrun every rank shares ``torchrun:TORCHELASTIC_RUN_ID@MASTER_ADDR:MASTER_PORT`` (the
rendezvous id and the address every rank meets at), else ``host:pid``;
``SALIENCY_LOCK_OWNER`` overrides both, for a program that holds a run and starts saliency
commands on it as child processes. Holding is re-entrant: the same process nests (the study
runner around its stages, a stage around the stages it runs), and the lock file goes when
the outermost hold of the process that created it ends, however it ends. Under torchrun rank
0 takes the lock and tells the other ranks (they never create or remove it); without a
process group a rank other than 0 proceeds when the file is absent, its job's, or stale.
A lock whose process is gone (same host: no such pid, or on Linux the pid now another
process's, as after a reboot) is taken over; :class:`Held` carries a note saying so. A lock
from another host is never taken over (its process cannot be seen): the refusal says which
file to remove if that command has stopped. A folder that does not exist is created when
``create`` (train, adopt and a study make their run) and removed again at the end if the
command left it empty; otherwise there is nothing to lock and the command reports the
missing run itself.

Torch-free (the process group is asked only when torchrun's variables say there is one).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

LOCK_NAME = ".saliency.lock"
OWNER_ENV = "SALIENCY_LOCK_OWNER"
POLL_S = 0.5


class RunBusy(ValueError):
    """Another command is writing the run (a user's situation: one line, exit code 2)."""


@dataclass(frozen=True)
class Held:
    """A hold on a run: its lock file (``None`` when there was no folder to lock, or on a
    rank other than 0) and a note when a dead process's lock was taken over."""

    lock: Path | None
    note: str | None = None


@dataclass
class _Entry:
    depth: int
    lock: Path | None  # the file this process created, to remove at the end
    made: list[Path] = field(default_factory=list)  # folders created for it, deepest first


_HELD: dict[Path, _Entry] = {}
_TABLE = threading.RLock()


def lock_path(run: str | os.PathLike) -> Path:
    return Path(run) / LOCK_NAME


def owner_id(env: Mapping[str, str] | None = None) -> str:
    """This process's job: the same for every rank of one torchrun job."""
    env = os.environ if env is None else env
    if env.get(OWNER_ENV):
        return env[OWNER_ENV]
    if "TORCHELASTIC_RUN_ID" in env and "MASTER_ADDR" in env:
        where = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '')}"
        return f"torchrun:{env['TORCHELASTIC_RUN_ID']}@{where}"
    return f"{socket.gethostname()}:{os.getpid()}"


def read(run: str | os.PathLike, tries: int = 20) -> dict | None:
    """The lock file's record; ``None`` when there is none, ``{}`` when it stays unreadable
    (a writer between creating and filling it is retried ``tries`` times, 10 ms apart)."""
    path = lock_path(run)
    for k in range(tries):
        try:
            info = json.loads(path.read_text())
            if isinstance(info, dict):
                return info
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        if k + 1 < tries:
            time.sleep(0.01)
    return {}


def busy_message(run: str | os.PathLike, info: dict) -> str:
    """The one line a second writer gets."""
    if not info:
        return (f"{run} is locked by {lock_path(run)}, which cannot be read; if no command is "
                "writing the run, remove that file")  # fmt: skip
    since = str(info.get("started", "?")).replace("T", " ")[:19]
    line = (f"{run} is being written by `saliency {info.get('command', '?')}` (host "
            f"{info.get('host', '?')}, process {info.get('pid', '?')}, since {since}); wait for "
            "it, or pass --wait")  # fmt: skip
    if info.get("host") != socket.gethostname():  # its death cannot be seen from here
        line += f" (if it has stopped, remove {lock_path(run)})"
    return line


@contextlib.contextmanager
def hold(
    run: str | os.PathLike, command: str, wait: bool = False, create: bool = False,
    poll: float = POLL_S,
) -> Iterator[Held]:  # fmt: skip
    """Hold ``run`` for ``command`` while the block runs (see the module's docstring).
    Raises :class:`RunBusy` when another job holds it and ``wait`` is false."""
    held = acquire(run, command, wait, create, poll)
    try:
        yield held
    except BaseException:
        release(run)
        raise
    release(run, finished=True)


def acquire(run: str | os.PathLike, command: str, wait: bool = False, create: bool = False,
            poll: float = POLL_S) -> Held:  # fmt: skip
    """Take (or nest into) the hold on ``run``; :func:`release` ends it."""
    from saliency.distributed import broadcast, from_env

    key = Path(run).resolve()
    with _TABLE:
        entry = _HELD.get(key)
        if entry is not None:
            entry.depth += 1
            return Held(entry.lock)
        world = from_env()
        grouped = world.distributed and _grouped()
        if world.main:
            try:
                entry, note = _take(Path(run), command, wait, create, poll)
            except Exception as exc:
                if grouped:  # the other ranks wait for rank 0's word
                    broadcast(("error", str(exc)))
                raise
            if grouped:
                broadcast(("ok", ""))
        elif grouped:  # rank 0 decides for the job
            kind, message = broadcast(None)
            if kind != "ok":
                raise RunBusy(message)
            entry, note = _Entry(1, None), None
        else:  # no process group to ask: absent, ours or stale is fine
            entry, note = _Entry(1, None), None
            _wait_free(Path(run), owner_id(), wait, poll)
        _HELD[key] = entry
        return Held(entry.lock, note)


def release(run: str | os.PathLike, finished: bool = False) -> None:
    """End one hold on ``run``: the outermost removes the lock file (and the folders made
    for it, when still empty). ``finished``: the block ended normally, so under torchrun
    every rank waits for the others before rank 0 lets the run go."""
    from saliency.distributed import barrier, from_env

    key = Path(run).resolve()
    with _TABLE:
        entry = _HELD.get(key)
        if entry is None:
            return
        entry.depth -= 1
        if entry.depth > 0:
            return
        del _HELD[key]
    if finished and from_env().distributed and _grouped():
        barrier()
    if entry.lock is not None:
        info = read(entry.lock.parent, tries=1)
        if info and info.get("pid") == os.getpid():  # ours still (never another's)
            entry.lock.unlink(missing_ok=True)
    for folder in entry.made:
        try:
            folder.rmdir()
        except OSError:  # the command wrote something: the run stays
            break


def _grouped() -> bool:
    from saliency.distributed import active

    return active()


def _take(run: Path, command: str, wait: bool, create: bool, poll: float
          ) -> tuple[_Entry, str | None]:  # fmt: skip
    """Create the lock file (rank 0, or no torchrun): the entry and a takeover note."""
    made = _make(run) if create else []
    if not run.is_dir():
        return _Entry(1, None), None  # nothing to lock: the command says the run is missing
    owner, note, path = owner_id(), None, lock_path(run)
    record = {"command": command, "host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.now().astimezone().isoformat(timespec="seconds"),
              "owner": owner, "process": _process_start(os.getpid())}  # fmt: skip
    data = json.dumps(record, indent=1).encode()
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return _Entry(1, path, made), note
        info = read(run)
        if info is None:
            continue  # released between our two looks
        if _dead_here(info):
            _remove_stale(path, info)
            note = (f"took over {path} from `saliency {info.get('command', '?')}` (process "
                    f"{info.get('pid')}, which has ended)")  # fmt: skip
            continue
        if info.get("owner") == owner:  # our job's: a parent, or rank 0 of our torchrun
            return _Entry(1, None, made), None
        if not wait:
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise RunBusy(busy_message(run, info))
        time.sleep(poll)


def _wait_free(run: Path, owner: str, wait: bool, poll: float) -> None:
    """A rank other than 0 without a process group: return once the run is free, ours or
    stale; another job's live lock is :class:`RunBusy` (or waited out)."""
    while True:
        info = read(run)
        if info is None or info.get("owner") == owner or _dead_here(info):
            return
        if not wait:
            raise RunBusy(busy_message(run, info))
        time.sleep(poll)


def _make(run: Path) -> list[Path]:
    """Create ``run`` (and missing parents); the folders created, deepest first."""
    missing = []
    p = run.absolute()
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    run.mkdir(parents=True, exist_ok=True)
    return missing


def _dead_here(info: dict) -> bool:
    """Whether the lock's process is on this host and gone: no such pid, or the pid is now
    another process (Linux: its start differs, e.g. after a reboot), or it is this process,
    which holds nothing there (an earlier process that had our pid, as in a container)."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True  # callers ask only for runs this process does not hold
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # someone else's process: alive
        pass
    then, now = info.get("process"), _process_start(pid)
    return bool(then and now and then != now)


def _process_start(pid: int) -> str | None:
    """Which process ``pid`` is (boot id and start time, Linux); ``None`` where unknown."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def _remove_stale(path: Path, info: dict) -> None:
    """Remove a dead process's lock file, unless another taker has already replaced it (the
    check and the removal happen under an exclusive flock on the run folder)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock: remove it as read
        fcntl = None
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        if read(path.parent) == info:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the flock
