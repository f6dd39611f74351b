"""``tristore admin scrub``: every node reads every record and body chunk it
holds and verifies its checksum, writing a sound copy from another holder over
each damaged one (AdminService.Scrub, node/scrub.py).

The node the client reaches asks every node of the map at once and passes
their progress on; this command shows it on a terminal, then prints each
node's counts.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, TYPE_CHECKING, Any

from tristore.cli import progress
from tristore.cli.admin_repair import bucket_arg
from tristore.cli.util import connect, format_table, print_json
from tristore.errors import ServiceUnavailable

if TYPE_CHECKING:
    from tristore.model import ScrubReport

TOTAL = "(total)"


def render_line(reports: dict[str, ScrubReport], elapsed_s: float) -> str:
    """The progress line: ``4/6 nodes done  41200 records  310 chunks  2 damaged ...``."""
    rs = list(reports.values())
    read = sum(r.bytes_checked for r in rs)
    rate = f"{read / elapsed_s / 1e6:.0f} MB/s" if elapsed_s > 0 else "- MB/s"
    done = sum(1 for r in rs if r.done)
    return (
        f"{done}/{len(rs)} nodes done  {sum(r.records_checked for r in rs)} records  "
        f"{sum(r.chunks_checked for r in rs)} chunks  "
        f"{sum(r.corrupt_records + r.corrupt_chunks for r in rs)} damaged  "
        f"{sum(r.repaired for r in rs)} repaired  {rate}"
    )


class ScrubProgress(progress.Progress):
    """cp's progress bar, with the scrub's running counts instead of bytes."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        super().__init__(None, out, **kwargs)
        self.reports: dict[str, ScrubReport] = {}

    def update(self, report: ScrubReport) -> None:
        self.reports[report.node] = report
        self._maybe_draw()

    def _draw(self, now: float) -> None:
        line = render_line(self.reports, now - self._started)
        pad = max(self._drawn_width - len(line), 0)
        self._out.write("\r" + line + " " * pad)
        self._out.flush()
        self._drawn_width = len(line)


def _total(reports: list[ScrubReport]) -> ScrubReport:
    from tristore.model import ScrubReport

    return ScrubReport(
        node=TOTAL,
        records_checked=sum(r.records_checked for r in reports),
        chunks_checked=sum(r.chunks_checked for r in reports),
        bytes_checked=sum(r.bytes_checked for r in reports),
        corrupt_records=sum(r.corrupt_records for r in reports),
        corrupt_chunks=sum(r.corrupt_chunks for r in reports),
        repaired=sum(r.repaired for r in reports),
        done=True,
    )


def render_summary(reports: list[ScrubReport]) -> str:
    """One row a node, then the total; then each node's error, if any."""
    rows: list[list[object]] = [
        [
            r.node,
            r.records_checked,
            r.chunks_checked,
            r.bytes_checked,
            r.corrupt_records,
            r.corrupt_chunks,
            r.repaired,
            r.unrepaired,
        ]
        for r in [*reports, _total(reports)]
    ]
    table = format_table(
        ["NODE", "RECORDS", "CHUNKS", "BYTES", "BAD RECORDS", "BAD CHUNKS", "REPAIRED", "LEFT"],
        rows,
    )
    errors = [f"{r.node}: {r.error}" for r in reports if r.error]
    return table + ("\n\n" + "\n".join(errors) if errors else "")


def to_json(bucket: str, reports: list[ScrubReport]) -> dict[str, object]:
    """The totals, with each node's counts under ``nodes``."""
    total = _total(reports).to_json()
    del total["node"], total["done"], total["error"]
    nodes = [{k: v for k, v in r.to_json().items() if k != "done"} for r in reports]
    return {"schema": 1, "command": "admin scrub", "bucket": bucket, **total, "nodes": nodes}


def cmd_scrub(args: argparse.Namespace) -> int:
    bucket = bucket_arg(args.bucket) if args.bucket else ""
    final: dict[str, ScrubReport] = {}
    bar = ScrubProgress(sys.stderr) if sys.stderr.isatty() else None  # a terminal only
    try:
        with connect(args.endpoint) as c:
            for report in c.scrub(bucket):
                if report.done:
                    final[report.node] = report
                if bar is not None:
                    bar.update(report)
    finally:
        if bar is not None:
            bar.close()
    if not final:
        raise ServiceUnavailable("the scrub stream ended before any node's report; run it again")
    reports = sorted(final.values(), key=lambda r: r.node)
    if args.json:
        print_json(to_json(bucket, reports))
    else:
        print(render_summary(reports))
    left = sum(r.unrepaired for r in reports)
    failed = [r.node for r in reports if r.error]
    if left or failed:
        print(
            f"{left} damaged value(s) not repaired; nodes not scrubbed whole: "
            f"{', '.join(failed) or 'none'}",
            file=sys.stderr,
        )
        return 1
    return 0


def add_parser(actions: Any, common: argparse.ArgumentParser) -> None:
    """Register ``scrub`` among the ``admin`` subcommands."""
    p = actions.add_parser(
        "scrub",
        parents=[common],
        help="verify the checksum of every stored record and chunk, repair damaged ones",
        description="Every node of the cluster reads every record and body chunk it holds "
        "and verifies its checksum; a damaged one is written over with a sound copy from "
        "another AZ (records through repair of their key, chunks read from another "
        "holder). Prints, per node, what was checked, damaged and repaired. Safe to run "
        "at any time. Exit 1 when something damaged could not be repaired or a node "
        "could not be scrubbed whole.",
    )
    p.add_argument("--bucket", metavar="B", help="only this bucket (default: everything)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=cmd_scrub)
