"""MXNet RecordIO (``.rec`` + ``.idx``), as insightface packs MS1MV2, read without MXNet.

A record is ``uint32 magic 0xced7230a``, ``uint32 lrecord`` (upper 3 bits: continuation flag,
lower 29: length) and the payload padded to 4 bytes. A payload holding the magic word on a
4-byte boundary is split into parts (flags 1 start, 2 middle, 3 end; 0 whole) and the magic
restored between parts on reading. An image payload is an ``IRHeader`` ``<IfQQ`` (flag,
label, id, id2), ``flag`` float32 labels when flag > 0, then the encoded image.

A manifest points at one image in a ``.rec`` with the path ``<file>.rec#<byte offset>``
(see :func:`record_path`): a reader seeks straight to it, with no index to load.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEAD = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")
_RECORD_PATH = re.compile(r"^(?P<rec>.+\.rec)#(?P<offset>\d+)$", re.IGNORECASE)


class RecordError(OSError):
    """A record that cannot be read; the message is the reason, fit for a skipped.csv."""


@dataclass(frozen=True)
class IRHeader:
    """A record's header: ``label`` is a float, or a float32 array when ``flag`` > 0."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def record_path(rec: str | os.PathLike, offset: int) -> str:
    """The manifest path of the record at byte ``offset`` of ``rec``."""
    return f"{rec}#{int(offset)}"


def split_record_path(path: str | os.PathLike) -> tuple[Path, int] | None:
    """``(rec file, offset)`` for a ``<file>.rec#<offset>`` path; None for any other path."""
    m = _RECORD_PATH.match(os.fspath(path))
    return None if m is None else (_path(m["rec"]), int(m["offset"]))


@lru_cache(maxsize=64)
def _path(text: str) -> Path:
    return Path(text)  # millions of records share a few .rec files


def record_file(path: str | os.PathLike) -> Path | None:
    """The ``.rec`` file a record path points into, or None for an ordinary path."""
    parts = split_record_path(path)
    return None if parts is None else parts[0]


def read_record(f: BinaryIO, offset: int) -> bytes:
    """The payload of the record starting at ``offset`` of the open file ``f``."""
    f.seek(offset)
    parts: list[bytes] = []
    while True:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise RecordError(f"record at offset {offset}: file ends inside the record header")
        magic, lrecord = _HEAD.unpack(head)
        if magic != MAGIC:
            raise RecordError(f"record at offset {offset}: bad magic 0x{magic:08x}, not a record")
        cflag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
        data = f.read((length + 3) & ~3)
        if len(data) < length:
            raise RecordError(
                f"record at offset {offset}: truncated ({len(data)} of {length} bytes)"
            )
        parts.append(data[:length])
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts)
        if cflag not in (1, 2) or (cflag == 2 and len(parts) == 1):
            raise RecordError(f"record at offset {offset}: bad continuation flag {cflag}")


def unpack(payload: bytes) -> tuple[IRHeader, bytes]:
    """Split an image payload into its header and the encoded image bytes."""
    if len(payload) < IR_HEADER.size:
        raise RecordError(f"record of {len(payload)} bytes is too short for an IRHeader")
    flag, label, id1, id2 = IR_HEADER.unpack_from(payload)
    start = IR_HEADER.size
    if flag > 0:
        end = start + 4 * flag
        if len(payload) < end:
            raise RecordError(f"record header announces {flag} labels but the record ends first")
        label = np.frombuffer(payload, dtype="<f4", count=flag, offset=start).copy()
        start = end
    return IRHeader(flag, label, id1, id2), payload[start:]


def pack(header: IRHeader, image: bytes) -> bytes:
    """An image payload (the inverse of :func:`unpack`), for tests and small writers."""
    if header.flag > 0:
        labels = np.asarray(header.label, dtype="<f4")
        return IR_HEADER.pack(header.flag, 0.0, header.id, header.id2) + labels.tobytes() + image
    return IR_HEADER.pack(0, float(header.label), header.id, header.id2) + image


def frame(payload: bytes) -> bytes:
    """One whole record (flag 0) around ``payload``, padded to 4 bytes."""
    if len(payload) >= 1 << 29:
        raise ValueError(f"a record holds at most 2^29 - 1 bytes, not {len(payload)}")
    pad = b"\0" * (-len(payload) % 4)
    return _HEAD.pack(MAGIC, len(payload)) + payload + pad


def read_header(f: BinaryIO, offset: int, max_labels: int = 8) -> IRHeader:
    """The IRHeader of the record at ``offset``, reading only its first bytes."""
    f.seek(offset)
    head = f.read(_HEAD.size + IR_HEADER.size + 4 * max_labels)
    if len(head) < _HEAD.size:
        raise RecordError(f"record at offset {offset}: file ends inside the record header")
    magic, lrecord = _HEAD.unpack_from(head)
    if magic != MAGIC:
        raise RecordError(f"record at offset {offset}: bad magic 0x{magic:08x}, not a record")
    length = lrecord & ((1 << 29) - 1)
    body = head[_HEAD.size : _HEAD.size + length]
    flag = struct.unpack_from("<I", body)[0] if len(body) >= 4 else 0
    if flag > max_labels or lrecord >> 29 not in (0, 1):  # rare: read the whole record
        header, _ = unpack(read_record(f, offset))
        return header
    header, _ = unpack(body)
    return header


def read_index(path: Path) -> tuple[list[tuple[int, int]], list[tuple[str, str]]]:
    """``[(key, offset)]`` sorted by key from a ``.idx`` file, and ``[(line, reason)]`` for
    lines that are not ``key<TAB>offset``."""
    entries, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not all(x.isdigit() for x in fields):
                reason = f"index line is not 'key<TAB>offset': {line.strip()[:40]!r}"
                bad.append((f"{path.name} line {n}", reason))
                continue
            entries.append((int(fields[0]), int(fields[1])))
    entries.sort()
    return entries, bad


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The encoded image of a ``<file>.rec#<offset>`` path (open, seek, read: process-safe)."""
    parts = split_record_path(path)
    if parts is None:
        raise ValueError(f"{path} is not a '<file>.rec#<offset>' record path")
    rec, offset = parts
    if not rec.is_file():
        raise RecordError(f"file not found: {rec}")
    with open(rec, "rb") as f:
        _, image = unpack(read_record(f, offset))
    if not image:
        raise RecordError(f"record at offset {offset} of {rec.name} holds no image")
    return image
