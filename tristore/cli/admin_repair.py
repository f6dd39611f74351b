"""``tristore admin repair``: anti-entropy between the AZs of one cluster.

The node the client reaches does the work (AdminService.Repair): for every key
of the bucket (of every bucket, and the internal ones, without ``--bucket``) it
compares what each of the key's three AZs holds and writes back what an AZ
lacks or holds stale. This command shows its progress on a terminal and prints
the counts per bucket and the records each AZ was missing.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, TYPE_CHECKING, Any

from tristore import validation
from tristore.cli import progress
from tristore.cli.util import connect, format_table, is_s3_url, parse_bucket_url, print_json
from tristore.errors import ServiceUnavailable

if TYPE_CHECKING:
    from tristore.model import RepairReport

TOTAL = "(total)"


def render_line(report: RepairReport, elapsed_s: float) -> str:
    """The progress line's text: ``photos  1200 keys  37 repaired  0 failed  410/s``."""
    rate = f"{report.keys_checked / elapsed_s:.0f}/s" if elapsed_s > 0 else "-/s"
    return (
        f"{report.bucket}  {report.keys_checked} keys  {report.keys_repaired} repaired  "
        f"{report.keys_failed} failed  {rate}"
    )


class RepairProgress(progress.Progress):
    """cp's progress bar, with the repair's running counts instead of bytes."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        from tristore.model import RepairReport

        super().__init__(None, out, **kwargs)
        self.report = RepairReport("")

    def update(self, report: RepairReport) -> None:
        self.report = report
        self._maybe_draw()

    def _draw(self, now: float) -> None:
        line = render_line(self.report, now - self._started)
        pad = max(self._drawn_width - len(line), 0)
        self._out.write("\r" + line + " " * pad)
        self._out.flush()
        self._drawn_width = len(line)


def render_summary(buckets: list[RepairReport], total: RepairReport, dry_run: bool) -> str:
    """One row a bucket (and a total row when there are several), then the
    records each AZ was missing."""
    rows: list[list[object]] = [
        [r.bucket, r.keys_checked, r.keys_repaired, r.versions_written, r.keys_failed]
        for r in buckets
    ]
    if len(buckets) != 1:
        rows.append(
            [
                TOTAL,
                total.keys_checked,
                total.keys_repaired,
                total.versions_written,
                total.keys_failed,
            ]
        )
    repaired = "TO REPAIR" if dry_run else "REPAIRED"
    table = format_table(["BUCKET", "KEYS", repaired, "WRITTEN", "FAILED"], rows)
    missing = format_table(
        ["AZ", "MISSING"], [[az, n] for az, n in sorted(total.missing_by_az.items())]
    )
    head = "dry run: nothing was written\n\n" if dry_run else ""
    return f"{head}{table}\n\n{missing}"


def to_json(buckets: list[RepairReport], total: RepairReport, dry_run: bool) -> dict[str, object]:
    """The totals, with ``dry_run`` and each bucket's counts under ``buckets``."""
    out = total.to_json()
    del out["done"]
    out["dry_run"] = dry_run
    out["buckets"] = [{k: v for k, v in b.to_json().items() if k != "done"} for b in buckets]
    return out


def bucket_arg(text: str) -> str:
    if is_s3_url(text):
        return parse_bucket_url(text)
    validation.check_bucket_name(text)
    return text


def cmd_repair(args: argparse.Namespace) -> int:
    bucket = bucket_arg(args.bucket) if args.bucket else ""
    latest: dict[str, RepairReport] = {}
    total: RepairReport | None = None
    bar = RepairProgress(sys.stderr) if sys.stderr.isatty() else None  # a terminal only
    try:
        with connect(args.endpoint) as c:
            for report in c.repair(bucket, dry_run=args.dry_run):
                if report.done:
                    total = report
                else:
                    latest[report.bucket] = report
                    if bar is not None:
                        bar.update(report)
    finally:
        if bar is not None:
            bar.close()
    if total is None:
        raise ServiceUnavailable("the repair stream ended before its final report; run it again")
    buckets = list(latest.values())
    if args.json:
        print_json(to_json(buckets, total, args.dry_run))
    else:
        print(render_summary(buckets, total, args.dry_run))
    if total.keys_failed:
        print(
            f"{total.keys_failed} key(s) could not be compared in every AZ; "
            "repair again when every AZ answers",
            file=sys.stderr,
        )
        return 1
    return 0


def add_parser(actions: Any, common: argparse.ArgumentParser) -> None:
    """Register ``repair`` among the ``admin`` subcommands."""
    p = actions.add_parser(
        "repair",
        parents=[common],
        help="anti-entropy: write back versions an AZ lacks or holds stale",
        description="Compare, for every key, what each of its three AZs holds (every "
        "version and the current record) and write back to an AZ what it lacks or holds "
        "an older record of (a node that lost its disk, say). Versions deleted for good "
        "stay deleted. Prints keys checked, keys repaired, records written and keys that "
        "failed per bucket, then the records each AZ was missing. Safe to run at any "
        "time and again. Exit 1 when a key could not be compared in every AZ.",
    )
    p.add_argument(
        "--bucket",
        metavar="B",
        help="only this bucket (default: every bucket, and the internal ones)",
    )
    p.add_argument("--dry-run", action="store_true", help="count what is missing; write nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_repair)
