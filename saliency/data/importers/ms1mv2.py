"""``ms1mv2``: insightface's MS1MV2 (``train.rec`` + ``train.idx``), read in place.

No image is extracted: each row's path is ``<abs>/train.rec#<byte offset>``, which
:func:`~saliency.data.imageio.read_rgb` decodes on the fly. Record 0 is insightface's header
record (labels ``[first identity record, end)``: image records are keys ``1 .. first - 1``);
without one every record is an image. An image record's label (or its first label) is the
identity id; gender (and an optional group) come from ``--identities``, a CSV with columns
``identity`` and ``label`` (or ``gender``; ``--label-col``) and optionally ``group``
(``--group-col``). Images of identities absent from it are skipped as one row per identity,
naming how many images it had, so a partial label file does not list millions of rows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.data.importers.common import ImportOptions, Skips, apply_map
from saliency.data.recordio import RecordError, read_header, read_index, record_path


def _files(src: Path) -> tuple[Path, Path]:
    rec = src if src.suffix == ".rec" else src / "train.rec"
    idx = rec.with_suffix(".idx")
    for p in (rec, idx):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; SRC is the MS1MV2 folder or its .rec file")
    return rec, idx


def _column(table: pd.DataFrame, chosen: str | None, names: tuple[str, ...], flag: str) -> str:
    found = [chosen] if chosen else [c for c in names if c in table.columns][:1]
    if not found or found[0] not in table.columns:
        want = chosen or " or ".join(names)
        raise ValueError(f"identities CSV has no column {want!r} (columns {list(table.columns)};"
                         f" choose one with {flag})")  # fmt: skip
    return found[0]


def read_identities(path: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    """The identities table indexed by integer identity id: ``label`` and ``group``."""
    if not path.is_file():
        raise FileNotFoundError(f"--identities {path} not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [c.strip() for c in table.columns]
    id_col = _column(table, None, ("identity", "id"), "an 'identity' header")
    label_col = _column(table, opts.label_col, ("label", "gender"), "--label-col")
    group_col = opts.group_col or ("group" if "group" in table.columns else None)
    if group_col:
        _column(table, group_col, (), "--group-col")
    df = pd.DataFrame({
        "path": [f"{path.name} line {n + 2}" for n in range(len(table))],  # skip sources
        "identity": table[id_col].str.strip(),
        "label": table[label_col].str.strip(),
        "group": table[group_col].str.strip() if group_col else "",
    })  # fmt: skip
    ok = df["identity"].str.fullmatch(r"\d+") & (df["label"] != "")
    for src, ident in zip(df.loc[~ok, "path"], df.loc[~ok, "identity"], strict=True):
        skips.add(src, f"identity {ident!r} is not a number or its label is empty")
    df = df[ok.to_numpy()]
    dup = df["identity"].astype(int).duplicated()
    for src, ident in zip(df.loc[dup, "path"], df.loc[dup, "identity"], strict=True):
        skips.add(src, f"identity {ident} listed again (the first line counts)")
    df = apply_map(df[~dup.to_numpy()], "label", opts.label_map, "label", skips)
    if group_col:
        df = apply_map(df, "group", opts.group_map, "group", skips)
    return df.set_index(df["identity"].astype(int))[["label", "group"]]


def _image_keys(entries: list[tuple[int, int]], f, rec: Path) -> list[tuple[int, int]]:
    """The index entries that are images: before insightface's identity records, if any."""
    if not entries or entries[0][0] != 0:
        return entries
    try:
        first = read_header(f, entries[0][1])
    except RecordError as exc:
        raise ValueError(f"{rec.name}: the first record is unreadable ({exc})") from exc
    if first.flag == 0 or len(first.label) < 2:
        return entries  # key 0 is an image: no header record
    end = int(first.label[0])
    return [(k, o) for k, o in entries if 1 <= k < end]


def load(src: Path, opts: ImportOptions, skips: Skips) -> pd.DataFrame:
    if opts.identities is None:
        raise ValueError("ms1mv2 needs --identities, a CSV of identity id to gender label")
    rec, idx = _files(src)
    ids = read_identities(Path(opts.identities), opts, skips)
    entries, bad = read_index(idx)
    for source, reason in bad:
        skips.add(source, reason)
    rec = rec.resolve()
    rows: list[tuple[str, int, int]] = []
    unlabeled: Counter[int] = Counter()
    with open(rec, "rb") as f:
        for key, offset in _image_keys(entries, f, rec):
            path = record_path(rec, offset)
            try:
                header = read_header(f, offset)
            except RecordError as exc:
                skips.add(path, str(exc))
                continue
            label = header.label if header.flag == 0 else header.label[0]
            if not np.isfinite(label) or label < 0 or label != int(label):
                skips.add(path, f"record {key}: identity label {label} is not an id")
                continue
            ident = int(label)
            if ident in ids.index:
                rows.append((path, key, ident))
            else:
                unlabeled[ident] += 1
    for ident, n in sorted(unlabeled.items()):
        skips.add(f"{rec} identity {ident}",
                  f"identity {ident} is not in {Path(opts.identities).name}: its {n} images "
                  "skipped")  # fmt: skip
    df = pd.DataFrame(rows, columns=["path", "rec_key", "identity"])
    df["label"] = ids["label"].reindex(df["identity"]).to_numpy()
    df["group"] = ids["group"].reindex(df["identity"]).to_numpy()
    return df[["path", "label", "group", "identity", "rec_key"]]
