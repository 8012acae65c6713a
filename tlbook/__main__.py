"""Command line: ``python -m tlbook prefetch`` (the downloads, ahead of time),
``python -m tlbook doctor`` (is this machine ready for the book?) and ``python -m tlbook prune``
(remove what no current tlbook call reads from the cache)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 failure with a message)."""
    args = _parser().parse_args(argv)
    if args.command == "prune":
        return _prune(args)
    if args.command == "doctor":
        from tlbook import doctor

        return doctor.main(args.profile)
    if args.command == "prefetch":
        return _prefetch(args)
    return 2  # pragma: no cover - argparse rejects other commands


def _parser() -> argparse.ArgumentParser:
    from tlbook import downloads
    from tlbook.config import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m tlbook", description="Tools for the tlbook transfer-learning book."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser(
        "prefetch",
        help="download and verify into the cache what the chapters need (the photos of chapters 4, 5 and 9); "
        "--all adds the optional files (ImageNet ResNet50 weights, flower photos)",
        description="Download into the tlbook cache (TLBOOK_CACHE) and verify what the chapters need: the Debian "
        "package of the photos of chapters 4, 5 and 9 (photos). With --all, also the files of the photo "
        "pipeline's options for readers with a network: the weights that "
        'build_transfer_model(K, backbone="resnet50", weights="imagenet") loads and the photos that '
        "downloads.flowers_folder() extracts. "
        + "; ".join(f"{d.key}: {d.description}, {d.size_mib:.0f} MiB" for d in downloads.DOWNLOADS.values()),
    )
    chosen = pre.add_mutually_exclusive_group()
    chosen.add_argument(
        "--only",
        action="append",
        choices=sorted(downloads.EVERY_DOWNLOAD),
        help="fetch only this file (repeatable)",
    )
    chosen.add_argument("--all", action="store_true", help="fetch the photos and the optional files")
    pre.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    pre.add_argument("--quiet", action="store_true", help="no progress lines")
    doc = sub.add_parser(
        "doctor",
        help="check Python, TensorFlow, the profile, the cache and the downloads; exit 1 if a chapter cannot run",
        description="Check that this machine can run the book, with advice for everything that is missing.",
    )
    doc.add_argument(
        "--profile",
        metavar="NAME",
        help=f"check for this profile ({', '.join(sorted(PROFILES))}; default: TLBOOK_PROFILE, else quick)",
    )
    prune = sub.add_parser(
        "prune",
        help="remove from the cache what no current tlbook call reads (an earlier version's files, half entries)",
        description="Remove from the tlbook cache (TLBOOK_CACHE) the files an earlier version of tlbook wrote, half "
        "entries and the leftovers of killed writes; with --all, every computed entry too (each is computed again "
        "when needed). The downloads are kept.",
    )
    prune.add_argument("--all", action="store_true", help="remove every computed entry too, keep the downloads")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    return parser


def _prune(args) -> int:
    from tlbook import cache

    pruned = cache.prune(everything=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in pruned.removed:
        print(f"{verb} {path}")
    size = f"{pruned.bytes / 2**20:.1f} MiB"
    print(
        f"{len(pruned.removed)} to remove, {size} to free"
        if args.dry_run
        else f"{len(pruned.removed)} removed, {size} freed"
    )
    return 0


def _prefetch(args) -> int:
    from tlbook import downloads

    try:
        keys = list(downloads.EVERY_DOWNLOAD) if args.all else args.only
        paths = downloads.prefetch(keys, timeout=args.timeout, quiet=args.quiet)
    except (downloads.DownloadError, PermissionError) as exc:
        print(f"prefetch failed: {exc}", file=sys.stderr)
        return 1
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
