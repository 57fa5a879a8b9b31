"""``saliency data import`` and ``saliency data check``."""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency.cli.options import add_config_arguments, config_from_args
from saliency.data.import_options import ImportOptions
from saliency.data.names import FORMAT_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="import data sets into manifests and check manifests")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    imp = data_sub.add_parser(
        "import",
        help="write a manifest from a data set's own layout",
        description="Formats: " + ", ".join(FORMAT_NAMES) + ". Rows that cannot be used are "
        "skipped and listed with a reason in <manifest>_skipped.csv.",
    )
    imp.add_argument("src", type=Path, help="data set folder (or CSV file for csv/morph)")
    imp.add_argument("--format", required=True, choices=FORMAT_NAMES,
                     help="the data set's own layout (required)")  # fmt: skip
    imp.add_argument("--out", required=True, type=Path, help="manifest CSV to write")
    add_config_arguments(imp, ImportOptions)
    imp.set_defaults(func=run_import)

    chk = data_sub.add_parser(
        "check",
        help="validate a manifest: files, labels, duplicates, landmarks",
        description="Exits 1 when it finds errors, 0 otherwise.",
    )
    chk.add_argument("manifest", type=Path, help="the manifest CSV to check")
    chk.add_argument("--classes", help="the expected class names, comma separated")
    chk.add_argument("--decode", action="store_true", help="decode every image fully (slower)")
    chk.add_argument("--report", type=Path, help="write every problem to this CSV")
    chk.set_defaults(func=run_check)


def run_import(args: argparse.Namespace) -> int:
    from saliency.atomic import atomic_write_text
    from saliency.data.importers import import_dataset
    from saliency.data.manifest import write_manifest

    opts = config_from_args(ImportOptions, args)
    result = import_dataset(args.format, args.src, args.out, opts)
    if result.df.empty:
        raise ValueError(
            f"no usable rows in {args.src}"
            + (f"; first reason: {result.skipped.iloc[0]['reason']}" if len(result.skipped) else "")
        )
    write_manifest(result.df, args.out)
    print(f"wrote {len(result.df)} rows to {args.out}")
    df = result.df
    table = df.groupby(["split", "group", "label"], dropna=False).size().rename("n")
    print(table.to_string())
    if len(result.skipped):
        skipped_path = args.out.with_name(args.out.stem + "_skipped.csv")
        atomic_write_text(skipped_path, result.skipped.to_csv(index=False))
        reasons = result.skipped["reason"].str.replace(r"'.*?'", "'…'", regex=True).value_counts()
        print(f"skipped {len(result.skipped)} rows (listed in {skipped_path}):")
        for reason, n in reasons.head(10).items():
            print(f"  {n:6d}  {reason}")
    return 0


def check_and_report(
    manifest: Path, classes: list[str] | None, decode: bool, report: Path | None
) -> int:
    from saliency.cli.progress import bar
    from saliency.stages.data import check, check_lines

    with bar(0, "check", unit="row") as progress:
        res = check(manifest, classes, decode, report, progress.update)
    for line in check_lines(res):
        print(line)
    return 0 if res.result.ok else 1


def run_check(args: argparse.Namespace) -> int:
    if not args.manifest.is_file():
        raise FileNotFoundError(f"{args.manifest} does not exist; name the manifest CSV to check")
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    return check_and_report(args.manifest, classes, args.decode, args.report)
