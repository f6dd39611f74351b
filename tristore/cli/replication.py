"""Bucket replication commands: ``tristore replication put|get|delete|status``,
``backfill``, ``verify`` and ``dlq list|replay``.

``put`` builds one rule from flags (or reads a JSON list of rules, in the form
``get --json`` prints them) and replaces the bucket's rules with it; ``status``
shows how far a version, or every version of a bucket, has been replicated.
``backfill`` queues the versions written before a rule existed, ``verify``
compares a bucket with its destinations, and ``dlq`` lists and replays the
versions whose replication FAILED. All three read the per-destination statuses
that a version listing carries, so they cost one listing (plus one call a
version to queue, or to read its tags when a rule filters on tags).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from tristore import replication
from tristore.cli import progress
from tristore.cli.multipart import MAX_PARALLEL, parallel_arg
from tristore.cli.util import (
    CliError,
    S3Url,
    cannot,
    connect,
    format_table,
    parse_bucket_url,
    parse_kv_list,
    parse_object_url,
    parse_s3_url,
    print_doc,
    print_json,
)
from tristore.errors import (
    InvalidArgument,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchKey,
    NoSuchVersion,
    SSECustomerKeyRequired,
    TristoreError,
)
from tristore.replication import Destination, Rule, rule_from_json
from tristore.validation import check_bucket_name, check_key, check_storage_class

if TYPE_CHECKING:
    from tristore.client import Client
    from tristore.model import VersionEntry

DEFAULT_RULE_ID = "rule-1"
#: How many versions and delete markers ``status s3://BUCKET`` looks at by default.
DEFAULT_STATUS_LIMIT = 1000
#: The label of a version no rule matched (an empty replication status).
NO_STATUS = "none"
STATUSES = (
    replication.PENDING,
    replication.COMPLETED,
    replication.FAILED,
    replication.REPLICA,
    NO_STATUS,
)

#: ``put`` flags that build a rule: not with --file.
_RULE_FLAGS = (
    "to",
    "id",
    "prefix",
    "tag",
    "priority",
    "delete_markers",
    "replica_modifications",
    "storage_class",
    "disabled",
)
#: The fields of a rule and of a destination in a rules file, and their JSON types.
_RULE_FIELDS: dict[str, type] = {
    "id": str,
    "priority": int,
    "status": str,
    "prefix": str,
    "tags": dict,
    "destinations": list,
    "delete_markers": bool,
    "replica_modifications": bool,
}
_DESTINATION_FIELDS: dict[str, type] = {
    "cluster": str,
    "bucket": str,
    "storage_class": str,
    "owner": str,
}
_JSON_TYPES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


# --- building rules -------------------------------------------------------------


def parse_destination(
    text: str, storage_class: str | None = None, flag: str = "--to"
) -> Destination:
    """``--to CLUSTER/BUCKET``."""
    cluster, sep, bucket = text.partition("/")
    if not sep or not cluster or not bucket or "/" in bucket:
        raise InvalidArgument(f"{flag} {text!r} must be of the form CLUSTER/BUCKET")
    check_bucket_name(bucket)
    return Destination(cluster, bucket, storage_class or "")


def rule_from_args(args: argparse.Namespace) -> Rule:
    """The one rule that ``put``'s flags describe."""
    if not args.to:
        raise InvalidArgument("give a destination with --to CLUSTER/BUCKET, or rules with --file")
    if args.storage_class:
        check_storage_class(args.storage_class)
    destinations = tuple(parse_destination(t, args.storage_class) for t in args.to)
    names = [d.name for d in destinations]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgument(f"--to {', '.join(twice)} is given twice")
    return Rule(
        id=args.id if args.id is not None else DEFAULT_RULE_ID,
        destinations=destinations,
        priority=args.priority if args.priority is not None else 0,
        enabled=not args.disabled,
        prefix=args.prefix or "",
        tags=parse_kv_list(args.tag, "--tag"),
        delete_markers=args.delete_markers,
        replica_modifications=args.replica_modifications,
    )


def _check_fields(
    raw: object, fields: Mapping[str, type], required: Sequence[str], what: str
) -> Mapping[str, object]:
    """``raw`` if it is an object of known fields of the right JSON types."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{what} must be a JSON object, not {json.dumps(raw)[:60]}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InvalidArgument(
            f"{what} has unknown field(s) {', '.join(unknown)} (known: {', '.join(fields)})"
        )
    missing = [name for name in required if name not in raw]
    if missing:
        raise InvalidArgument(f"{what} lacks {', '.join(missing)}")
    for name, value in raw.items():
        kind = fields[name]
        # JSON's true is a Python int too: an integer field must not take it.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidArgument(f"{what}: {name} must be {_JSON_TYPES[kind]}, not {value!r}")
    return raw


def rules_from_json(text: str, source: str = "the rules file") -> tuple[Rule, ...]:
    """Rules from JSON: a list of rules as ``Rule.to_json()`` writes them, or
    the object ``replication get --json`` prints (its ``rules``)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"{source} is not JSON: {e}") from None
    if isinstance(doc, dict) and "rules" in doc:
        doc = doc["rules"]
    if not isinstance(doc, list):
        raise InvalidArgument(f"{source} must hold a JSON list of rules")
    if not doc:
        raise InvalidArgument(
            f"{source} holds no rules (to remove them all: tristore replication delete)"
        )
    rules = []
    for i, raw in enumerate(doc, 1):
        what = f"{source}: rule {i}"
        checked = _check_fields(raw, _RULE_FIELDS, ("id", "destinations"), what)
        tags, dests = checked.get("tags", {}), checked["destinations"]
        assert isinstance(tags, dict) and isinstance(dests, list)
        if not all(isinstance(v, str) for v in tags.values()):
            raise InvalidArgument(f"{what}: tags must map names to strings")
        for j, d in enumerate(dests, 1):
            _check_fields(d, _DESTINATION_FIELDS, ("cluster", "bucket"), f"{what}, destination {j}")
        try:
            rules.append(rule_from_json(checked))
        except InvalidArgument as e:
            raise InvalidArgument(f"{what}: {e.message}") from None
    return tuple(rules)


def read_rules_file(path: str) -> tuple[Rule, ...]:
    """``--file PATH`` (``-``: stdin)."""
    if path == "-":
        return rules_from_json(sys.stdin.read(), "stdin")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise cannot("read", path, e) from None
    return rules_from_json(text, path)


# --- showing rules --------------------------------------------------------------

RULE_COLUMNS = ("ID", "STATUS", "PRIORITY", "PREFIX", "TAGS", "DESTINATIONS", "DELETE MARKERS")


def destination_label(d: Destination) -> str:
    """``cluster/bucket``, and its overrides: ``c2/logs (GLACIER, owner ops)``."""
    extras = [d.storage_class] if d.storage_class else []
    extras += [f"owner {d.owner}"] if d.owner else []
    return f"{d.name} ({', '.join(extras)})" if extras else d.name


def rule_row(r: Rule) -> list[str]:
    return [
        r.id,
        "Enabled" if r.enabled else "Disabled",
        str(r.priority),
        r.prefix or "-",
        ",".join(f"{k}={v}" for k, v in sorted(r.tags.items())) or "-",
        ", ".join(destination_label(d) for d in r.destinations),
        "yes" if r.delete_markers else "no",
    ]


def format_rules(rules: Iterable[Rule]) -> str:
    """The rules as a table, one row a rule."""
    return format_table(RULE_COLUMNS, [rule_row(r) for r in rules])


def rules_json(bucket: str, rules: Iterable[Rule]) -> dict[str, object]:
    return {"bucket": bucket, "rules": [r.to_json() for r in rules]}


def _print_rules(bucket: str, rules: Sequence[Rule], as_json: bool) -> None:
    if as_json:
        print_json(rules_json(bucket, rules))
    elif rules:
        print(format_rules(rules))
    else:
        print(f"s3://{bucket} has no replication rules", file=sys.stderr)


# --- counting statuses ----------------------------------------------------------


def status_label(status: str) -> str:
    return status or NO_STATUS


@dataclass
class StatusCount:
    """What ``status s3://BUCKET`` found."""

    #: Versions (not delete markers) by replication status, every one of STATUSES first.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    #: Delete markers by replication status, as ``counts``. A HEAD cannot read
    #: a marker, so their statuses are those the version listing carries.
    marker_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    #: Versions deleted between the listing and their HEAD.
    gone: int = 0
    #: True when the limit stopped the walk before the bucket's last version.
    truncated: bool = False

    @property
    def versions(self) -> int:
        return sum(self.counts.values())

    @property
    def delete_markers(self) -> int:
        return sum(self.marker_counts.values())

    def to_json(self) -> dict[str, object]:
        return {
            "counts": dict(self.counts),
            "versions": self.versions,
            "delete_marker_counts": dict(self.marker_counts),
            "delete_markers": self.delete_markers,
            "gone": self.gone,
            "truncated": self.truncated,
        }


def count_statuses(
    entries: Iterable[VersionEntry], status_of: Callable[[VersionEntry], str | None], limit: int
) -> StatusCount:
    """Count the first ``limit`` versions and delete markers of ``entries`` by
    status: a version's is the one ``status_of`` gives (None: the version is
    gone), a delete marker's the one its entry carries. ``entries`` is read
    lazily and no further than the limit, so a listing stops there too."""
    if limit < 1:
        raise InvalidArgument(f"--limit must be at least 1, not {limit}")
    out = StatusCount()
    seen = 0
    for e in entries:
        if seen == limit:
            out.truncated = True
            break
        seen += 1
        if e.delete_marker:
            label = status_label(e.replication_status)
            out.marker_counts[label] = out.marker_counts.get(label, 0) + 1
            continue
        status = status_of(e)
        if status is None:
            out.gone += 1
        else:
            label = status_label(status)
            out.counts[label] = out.counts.get(label, 0) + 1
    return out


def format_status_count(count: StatusCount) -> str:
    labels = {**dict.fromkeys(count.counts), **dict.fromkeys(count.marker_counts)}
    rows = [
        (label, count.counts.get(label, 0), count.marker_counts.get(label, 0)) for label in labels
    ]
    return format_table(("STATUS", "VERSIONS", "DELETE MARKERS"), rows)


def status_notes(count: StatusCount, limit: int) -> list[str]:
    """What the counts leave out, for stderr."""
    notes = []
    if count.gone:
        notes.append(f"{count.gone} version(s) deleted while counting")
    if count.truncated:
        notes.append(
            f"stopped after {limit} versions and delete markers (--limit); "
            "the rest of the bucket was not counted"
        )
    return notes


def _version_status(c: Client, bucket: str) -> Callable[[VersionEntry], str | None]:
    def status_of(e: VersionEntry) -> str | None:
        try:
            return c.head_object(bucket, e.key, version_id=e.version_id).replication_status
        except (NoSuchKey, NoSuchVersion):
            return None
        except SSECustomerKeyRequired:
            # An SSE-C version: its HEAD needs the key, which a status does
            # not; its listing entry carries the status.
            return e.replication_status

    return status_of


# --- walking a bucket's versions -------------------------------------------------

#: What ``backfill`` does with one version (BackfillPlan.outcome).
MATCH = "match"
NO_MATCH = "no-match"
SKIP_REPLICA = "replica"
GONE = "gone"

#: The kinds of difference ``verify`` reports.
MISSING = "missing"
DIFFERENT = "different"
STILL_PENDING = "pending"
HAS_FAILED = "failed"
DIFFERENCES = (MISSING, DIFFERENT, STILL_PENDING, HAS_FAILED)

#: Versions ``backfill`` works on at once (reading tags; requeue calls) by default.
DEFAULT_BACKFILL_PARALLEL = 8
#: Versions one requeue call of ``backfill`` carries by default, and at most
#: (the node's ``[node] replication_max_batch``). The items of a call are
#: written concurrently and share their messages to the replicas and the
#: witnesses, so fuller calls cost the cluster less a version: 10,000 versions
#: queued at 622/s with 200 a call, 888/s with 500, 1,165-1,252/s with 1,000
#: (two clusters on one 2-core machine).
DEFAULT_BACKFILL_BATCH = 1000
MAX_BACKFILL_BATCH = 1000
#: Requeue calls of ``backfill`` in flight, each from a client of its own:
#: clients start on a random endpoint, so the calls' coordinating work is
#: spread over the cluster's nodes instead of all falling on one. Each item
#: is a conditional write; a few hundred at once already fill a cluster's pipes.
BACKFILL_CALLS = 4
#: Tries of an item the cluster answered "retry" to (overloaded, say).
REQUEUE_TRIES = 5

A = TypeVar("A")
R = TypeVar("R")

#: Requeue errors printed one a line before ``backfill`` and ``dlq replay`` only count them.
MAX_ERROR_LINES = 20

#: Reads one version's tags; None when the version is gone.
TagsOf = Callable[["VersionEntry"], "Mapping[str, str] | None"]


def split_status(value: str) -> tuple[str, str]:
    """A destination's status as a version carries it: ``FAILED: why`` is
    ``(FAILED, why)``, ``COMPLETED`` is ``(COMPLETED, "")``."""
    state, _, detail = value.partition(":")
    return state.strip(), detail.strip()


def enabled_destinations(rules: Iterable[Rule]) -> list[str]:
    """Every ``cluster/bucket`` an enabled rule sends to, sorted."""
    return sorted({d.name for r in rules if r.enabled for d in r.destinations})


def needs_tags(rules: Iterable[Rule], key: str) -> bool:
    """True when an enabled rule that could match ``key`` filters on tags: only
    then is a version's tag set worth a call (a listing does not carry it)."""
    return any(r.enabled and r.tags and key.startswith(r.prefix) for r in rules)


def destinations_of(e: VersionEntry, rules: Sequence[Rule], tags_of: TagsOf) -> list[str] | None:
    """Where the bucket's rules send ``e`` today (``cluster/bucket`` names);
    None when its tags were needed and it is gone. A delete marker has no tags."""
    tags: Mapping[str, str] = {}
    if not e.delete_marker and needs_tags(rules, e.key):
        got = tags_of(e)
        if got is None:
            return None
        tags = got
    return [d.name for d in replication.destinations_for(rules, e.key, tags, e.delete_marker)]


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _which(version_id: str, delete_marker: bool) -> str:
    """``version V`` or ``delete marker V``, as the lines of backfill and replay say it."""
    return f"{'delete marker' if delete_marker else 'version'} {version_id}"


# --- backfill -------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillPlan:
    """What ``backfill`` does with one entry of the listing."""

    entry: VersionEntry
    #: MATCH, NO_MATCH (the rules send it nowhere), SKIP_REPLICA or GONE.
    outcome: str
    #: Destinations the version has no status for: to be queued.
    queue: tuple[str, ...] = ()
    #: Destinations it already has a status for, and that status.
    present: Mapping[str, str] = field(default_factory=dict)


def plan_version(e: VersionEntry, rules: Sequence[Rule], tags_of: TagsOf) -> BackfillPlan:
    """Which of the destinations the rules send ``e`` to it still needs queuing
    for: those it carries no status for (it was written before the rule). A
    delete marker goes where rules with delete-marker replication send its key."""
    if e.replication_status == replication.REPLICA:  # never sent on
        return BackfillPlan(e, SKIP_REPLICA)
    dests = destinations_of(e, rules, tags_of)
    if dests is None:
        return BackfillPlan(e, GONE)
    if not dests:
        return BackfillPlan(e, NO_MATCH)
    present = {d: e.replication_targets[d] for d in dests if d in e.replication_targets}
    queue = tuple(d for d in dests if d not in present)
    return BackfillPlan(e, MATCH, queue, present)


def plan_backfill(
    entries: Iterable[VersionEntry], rules: Sequence[Rule], tags_of: TagsOf
) -> Iterator[BackfillPlan]:
    """A plan for each entry, read lazily: a listing is walked page by page."""
    for e in entries:
        yield plan_version(e, rules, tags_of)


@dataclass
class BackfillCount:
    """What ``backfill`` did. Versions (delete markers among them) are counted
    once; ``queued``, ``already``, ``failed`` and ``errors`` count
    version-destination pairs (the caller counts ``queued`` and ``errors`` as
    the requeues go)."""

    #: Versions and delete markers seen.
    versions: int = 0
    queued: int = 0
    #: PENDING or COMPLETED already: nothing to do.
    already: int = 0
    #: FAILED: left to ``dlq replay``.
    failed: int = 0
    #: Sent nowhere by the enabled rules (a marker: by none with delete-marker replication).
    not_matching: int = 0
    replicas: int = 0
    #: Delete markers seen (counted in ``versions`` too, and handled like versions).
    delete_markers: int = 0
    gone: int = 0
    errors: int = 0

    def add(self, plan: BackfillPlan) -> None:
        """Count a plan, but not its ``queue``."""
        self.versions += 1
        if plan.entry.delete_marker:
            self.delete_markers += 1
        if plan.outcome == SKIP_REPLICA:
            self.replicas += 1
        elif plan.outcome == GONE:
            self.gone += 1
        elif plan.outcome == NO_MATCH:
            self.not_matching += 1
        for status in plan.present.values():
            if split_status(status)[0] == replication.FAILED:
                self.failed += 1
            else:
                self.already += 1

    def rows(self, dry_run: bool = False) -> list[tuple[str, int]]:
        return [
            ("versions seen", self.versions),
            ("to queue (dry run)" if dry_run else "queued", self.queued),
            ("already queued or replicated", self.already),
            ("failed (see dlq list)", self.failed),
            ("sent nowhere by the rules", self.not_matching),
            ("replicas skipped", self.replicas),
            ("delete markers among the versions", self.delete_markers),
            ("deleted meanwhile", self.gone),
            ("errors", self.errors),
        ]

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def render_count(count: BackfillCount, elapsed_s: float) -> str:
    """The backfill bar's text: ``1200 versions  300 queued  410/s``."""
    rate = f"{count.versions / elapsed_s:.0f}/s" if elapsed_s > 0 else "-/s"
    return f"{count.versions} versions  {count.queued} queued  {rate}"


class CountProgress(progress.Progress):
    """cp's progress bar, counting versions rather than bytes (the total is
    unknown: a listing is not counted ahead)."""

    def __init__(self, count: BackfillCount, out: IO[str], **kwargs: Any) -> None:
        super().__init__(None, out, **kwargs)
        self.count = count

    def _draw(self, now: float) -> None:
        line = render_count(self.count, now - self._started)
        pad = max(self._drawn_width - len(line), 0)
        self._out.write("\r" + line + " " * pad)
        self._out.flush()
        self._drawn_width = len(line)


def count_bar(count: BackfillCount, enabled: bool = True) -> progress.Progress:
    """A bar on stderr when it is a terminal; otherwise one that draws nothing."""
    if enabled and sys.stderr.isatty():
        return CountProgress(count, sys.stderr)
    return progress.for_stderr(None, enabled=False)


# --- verify ---------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way a destination differs from what its source says it should hold."""

    #: One of DIFFERENCES: missing, different, pending, failed.
    kind: str
    key: str
    version_id: str
    destination: str
    delete_marker: bool = False
    #: The failure for ``failed``, the ETags for ``different``, why for ``missing``.
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        """``missing    west/dst  VERSION  KEY  (detail)``: the key last but the detail."""
        what = f"{self.key} (delete marker)" if self.delete_marker else self.key
        detail = f"  ({self.detail})" if self.detail else ""
        return f"{self.kind:<9}  {self.destination}  {self.version_id}  {what}{detail}"


def compare(e: VersionEntry, destination: str, held: VersionEntry | None) -> Difference | None:
    """How ``destination``'s copy ``held`` (None: it has no version of that id)
    differs from the source version ``e`` and the status ``e`` carries for it."""
    status, error = split_status(e.replication_targets.get(destination, ""))

    def diff(kind: str, detail: str = "") -> Difference:
        return Difference(kind, e.key, e.version_id, destination, e.delete_marker, detail)

    if held is not None and held.delete_marker != e.delete_marker:
        what = ("a delete marker", "a version")
        src, dst = what if e.delete_marker else what[::-1]
        return diff(DIFFERENT, f"{src} at the source, {dst} at the destination")
    if held is not None and not e.delete_marker and held.etag != e.etag:
        return diff(DIFFERENT, f"etag {e.etag} at the source, {held.etag} at the destination")
    if status == replication.FAILED:
        return diff(HAS_FAILED, error or "no error recorded")
    if status == replication.PENDING:
        return diff(STILL_PENDING)
    if held is not None:
        return None
    if status == replication.COMPLETED:
        return diff(MISSING, "COMPLETED at the source")
    return diff(MISSING, "never queued: tristore replication backfill")


class KeyCursor:
    """A destination's listing read alongside the source's, key by key. Both
    are sorted by key, so one pass over each does: no listing is held whole."""

    def __init__(self, entries: Iterable[VersionEntry]) -> None:
        self._it = iter(entries)
        self._next = next(self._it, None)
        self._last: str | None = None

    def versions_of(self, key: str) -> dict[str, VersionEntry]:
        """The versions of ``key``, by id. Keys must be asked for in ascending order."""
        if self._last is not None and key <= self._last:
            raise CliError("UnorderedListing", f"key {key!r} came after {self._last!r}")
        self._last = key
        while self._next is not None and self._next.key < key:
            self._next = next(self._it, None)
        out: dict[str, VersionEntry] = {}
        while self._next is not None and self._next.key == key:
            out[self._next.version_id] = self._next
            self._next = next(self._it, None)
        return out


@dataclass
class VerifyCount:
    """What ``verify`` looked at. ``checked`` counts version-destination pairs."""

    versions: int = 0
    checked: int = 0
    not_replicated: int = 0
    replicas: int = 0
    gone: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIFFERENCES, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "total": self.total}


def diff_versions(
    source: Iterable[VersionEntry],
    destinations: Mapping[str, Iterable[VersionEntry]],
    rules: Sequence[Rule],
    tags_of: TagsOf,
    count: VerifyCount | None = None,
) -> Iterator[Difference]:
    """Every difference between the source listing and the listings of the
    ``destinations`` (by ``cluster/bucket``; every enabled rule's must be
    there), for the source versions that are not replicas and that the rules
    send somewhere. ``count`` adds up what was looked at."""
    count = count if count is not None else VerifyCount()
    cursors = {name: KeyCursor(entries) for name, entries in destinations.items()}
    for key, group in itertools.groupby(source, key=lambda e: e.key):
        held: dict[str, dict[str, VersionEntry]] = {}
        for e in group:
            count.versions += 1
            if e.replication_status == replication.REPLICA:
                count.replicas += 1
                continue
            dests = destinations_of(e, rules, tags_of)
            if dests is None:
                count.gone += 1
                continue
            if not dests:
                count.not_replicated += 1
            for d in dests:
                if d not in held:
                    held[d] = cursors[d].versions_of(key)
                count.checked += 1
                found = compare(e, d, held[d].get(e.version_id))
                if found is not None:
                    count.counts[found.kind] += 1
                    yield found


def verify_summary(count: VerifyCount, destinations: Sequence[str]) -> str:
    against = ", ".join(destinations)
    tail = (
        f"{_plural(count.versions, 'source version')} listed, "
        f"{count.not_replicated} sent nowhere, {_plural(count.replicas, 'replica')} skipped"
    )
    if not count.total:
        return f"no differences: {_plural(count.checked, 'check')} against {against}; {tail}"
    kinds = ", ".join(f"{n} {kind}" for kind, n in count.counts.items())
    return (
        f"{_plural(count.total, 'difference')} ({kinds}) in "
        f"{_plural(count.checked, 'check')} against {against}; {tail}"
    )


def parse_to_endpoints(items: Sequence[str] | None) -> dict[str, str]:
    """``--to-endpoint CLUSTER=HOST:PORT[,HOST:PORT...]`` (repeatable)."""
    out = parse_kv_list(items, "--to-endpoint")
    for cluster, hosts in out.items():
        if not hosts.strip():
            raise InvalidArgument(f"--to-endpoint {cluster}= names no HOST:PORT")
    return out


def endpoints_for(destinations: Iterable[str], given: Mapping[str, str]) -> dict[str, str]:
    """The endpoints of each destination cluster; InvalidArgument naming the
    clusters that --to-endpoint left out (the CLI knows only the source's)."""
    clusters = sorted({d.partition("/")[0] for d in destinations})
    lacking = [c for c in clusters if c not in given]
    if lacking:
        flags = " ".join(f"--to-endpoint {c}=HOST:PORT[,...]" for c in lacking)
        raise InvalidArgument(
            f"the rules send to cluster(s) {', '.join(lacking)}, whose endpoints "
            f"are not known here: give {flags}"
        )
    return {c: given[c] for c in clusters}


# --- the dead-letter queue --------------------------------------------------------


@dataclass(frozen=True)
class FailedTarget:
    """One destination of one version whose replication FAILED."""

    key: str
    version_id: str
    destination: str
    error: str
    delete_marker: bool = False

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def failed_targets(
    entries: Iterable[VersionEntry],
    key: str | None = None,
    version_id: str | None = None,
    destination: str | None = None,
) -> Iterator[FailedTarget]:
    """Every FAILED destination of ``entries``, or those of the key, version
    and destination named."""
    for e in entries:
        if (key is not None and e.key != key) or (
            version_id is not None and e.version_id != version_id
        ):
            continue
        for dest, value in sorted(e.replication_targets.items()):
            state, error = split_status(value)
            if state == replication.FAILED and destination in (None, dest):
                yield FailedTarget(e.key, e.version_id, dest, error, e.delete_marker)


DLQ_COLUMNS = ("KEY", "VERSION", "DESTINATION", "ERROR")


def format_failed(targets: Iterable[FailedTarget]) -> str:
    return format_table(
        DLQ_COLUMNS,
        [
            (
                f"{t.key} (delete marker)" if t.delete_marker else t.key,
                t.version_id,
                t.destination,
                t.error or "-",
            )
            for t in targets
        ],
    )


# --- commands -------------------------------------------------------------------


def cmd_put(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    if args.file is not None:
        given = [
            "--" + n.replace("_", "-")
            for n in _RULE_FLAGS
            if getattr(args, n) not in (None, False, [])
        ]
        if given:
            raise InvalidArgument(f"{' and '.join(given)}: not with --file (it holds the rules)")
        rules = read_rules_file(args.file)
    else:
        rules = (rule_from_args(args),)
    with connect(args.endpoint) as c:
        stored = c.put_bucket_replication(bucket, rules)
    _print_rules(bucket, stored, args.json)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        rules = c.get_bucket_replication(bucket)
    _print_rules(bucket, rules, args.json)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        c.delete_bucket_replication(bucket)
    if args.json:
        print_doc("replication delete", {"bucket": bucket})
    else:
        print(f"delete_replication: s3://{bucket}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    url = parse_s3_url(args.url)
    if url.key:
        if args.limit is not None:
            raise InvalidArgument("--limit: only with s3://BUCKET (no key)")
        return _status_of_version(parse_object_url(args.url), args)
    if args.version_id is not None:
        raise InvalidArgument("--version-id: only with s3://BUCKET/KEY")
    limit = args.limit if args.limit is not None else DEFAULT_STATUS_LIMIT
    with connect(args.endpoint) as c:
        entries = (
            e
            for page in c.iter_object_versions(url.bucket, page_size=min(limit + 1, 1000))
            for e in page.versions
        )
        count = count_statuses(entries, _version_status(c, url.bucket), limit)
    if args.json:
        print_json({"bucket": url.bucket, "limit": limit, **count.to_json()})
        return 0
    print(format_status_count(count), flush=True)
    for note in status_notes(count, limit):
        print(note, file=sys.stderr)
    return 0


def _status_of_version(url: S3Url, args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        try:
            info = c.head_object(url.bucket, url.key, version_id=args.version_id)
            version_id, status = info.version_id, info.replication_status
        except (SSECustomerKeyRequired, MethodNotAllowed):
            # An SSE-C version, or a delete marker: its listing entry has the status.
            entry = _entry_of(c, url.bucket, url.key, args.version_id)
            if entry is None:
                raise
            version_id, status = entry.version_id, entry.replication_status
        targets = _targets_of(c, url.bucket, url.key, version_id)
    if args.json:
        print_json(
            {
                "bucket": url.bucket,
                "key": url.key,
                "version_id": version_id,
                "replication_status": status,
                "destinations": targets,
            }
        )
    else:
        print(status_label(status))
        width = max((len(d) for d in targets), default=0)
        for dest, value in sorted(targets.items()):
            print(f"  {dest:<{width}}  {value}")
    return 0


def _targets_of(c: Client, bucket: str, key: str, version_id: str) -> dict[str, str]:
    """A version's status per destination, as the version listing carries it
    (a HEAD gives only the overall status)."""
    e = _entry_of(c, bucket, key, version_id)
    return dict(e.replication_targets) if e is not None else {}


def _entry_of(c: Client, bucket: str, key: str, version_id: str | None) -> VersionEntry | None:
    """The listing entry of ``key``'s version ``version_id`` (None: its latest)."""
    for e in _entries(c, bucket, key):
        if e.key > key:
            break
        if e.key == key and (e.version_id == version_id or (version_id is None and e.is_latest)):
            return e
    return None


def _entries(c: Client, bucket: str, prefix: str = "") -> Iterator[VersionEntry]:
    """Every version and delete marker of ``bucket`` under ``prefix``, page by page."""
    for page in c.iter_object_versions(bucket, prefix):
        yield from page.versions


def _tags_reader(c: Client, bucket: str) -> TagsOf:
    def tags_of(e: VersionEntry) -> Mapping[str, str] | None:
        try:
            return c.get_object_tagging(bucket, e.key, version_id=e.version_id).tags
        except (NoSuchKey, NoSuchVersion):
            return None

    return tags_of


def _enabled_rules(c: Client, bucket: str) -> tuple[Rule, ...]:
    rules = c.get_bucket_replication(bucket)
    if not any(r.enabled for r in rules):
        raise InvalidRequest(
            f"s3://{bucket} has no enabled replication rule "
            f"(tristore replication put s3://{bucket} --to CLUSTER/BUCKET)"
        )
    return rules


class _Errors:
    """Requeue failures: the first MAX_ERROR_LINES on stderr, then only counted."""

    def __init__(self, quiet: bool = False) -> None:
        self.count = 0
        #: With ``quiet`` (``--json``) nothing is printed: each failure is kept
        #: here, for the document.
        self.quiet = quiet
        self.failures: list[dict[str, object]] = []

    def report(
        self,
        bucket: str,
        key: str,
        version_id: str,
        dest: str,
        exc: TristoreError,
        delete_marker: bool = False,
    ) -> None:
        self.count += 1
        if self.quiet:
            self.failures.append(
                {
                    "key": key,
                    "version_id": version_id,
                    "destination": dest,
                    "delete_marker": delete_marker,
                    "error": {"code": exc.code, "message": exc.message},
                }
            )
        elif self.count <= MAX_ERROR_LINES:
            print(
                f"requeue s3://{bucket}/{key} ({_which(version_id, delete_marker)}) to {dest}: "
                f"{exc.code}: {exc.message}",
                file=sys.stderr,
            )

    def close(self) -> None:
        if not self.quiet and self.count > MAX_ERROR_LINES:
            print(f"({self.count - MAX_ERROR_LINES} more errors not shown)", file=sys.stderr)


def batch_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_BACKFILL_BATCH:
        raise argparse.ArgumentTypeError(f"give a whole number from 1 to {MAX_BACKFILL_BATCH}")
    return n


def cmd_backfill(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    count = BackfillCount()
    errors = _Errors()
    parallel = args.parallel if args.parallel is not None else DEFAULT_BACKFILL_PARALLEL
    size = args.batch if args.batch is not None else DEFAULT_BACKFILL_BATCH
    clients = _SenderClients(args.endpoint)
    with (
        connect(args.endpoint) as c,
        ThreadPoolExecutor(parallel) as pool,
        ThreadPoolExecutor(BACKFILL_CALLS) as senders,
        clients,
    ):
        rules = _enabled_rules(c, bucket)
        tags_of = _tags_reader(c, bucket)

        def send(plans: list[BackfillPlan]) -> list[Requeued]:
            if args.dry_run:
                return [(p, []) for p in plans]
            return _requeue(clients.mine(), bucket, plans)

        entries = _entries(c, bucket, args.prefix or "")
        if any(r.enabled and r.tags for r in rules):  # one call a version: several at once
            plans = in_order(pool, lambda e: plan_version(e, rules, tags_of), entries, parallel)
        else:
            plans = plan_backfill(entries, rules, tags_of)

        # A dry run prints a line a version: the lines are the progress. With
        # --json they go into the one JSON object instead.
        would: list[dict[str, object]] | None = [] if args.json else None
        bar = count_bar(count, enabled=not (args.no_progress or args.dry_run))
        try:
            results = in_order(senders, send, batches(plans, size), BACKFILL_CALLS)
            for plan, outcomes in itertools.chain.from_iterable(results):
                count.add(plan)
                _count_requeues(bucket, plan, outcomes, args.dry_run, count, errors, would)
                bar(count.versions)
        except KeyboardInterrupt:
            bar.close()
            print(
                f"stopped after {_plural(count.versions, 'version')} "
                f"({count.queued} queued); running backfill again is safe: "
                "a queued version is not queued twice",
                file=sys.stderr,
            )
            pool.shutdown(cancel_futures=True)
            senders.shutdown(cancel_futures=True)
            raise
        finally:
            bar.close()
            errors.close()
    if args.json:
        head = {"bucket": bucket, "prefix": args.prefix or "", "dry_run": args.dry_run}
        extra = {"would_queue": would} if args.dry_run else {}
        print_json({**head, **count.to_json(), **extra})
    else:
        for label, n in count.rows(args.dry_run):
            print(f"{label}: {n}")
    _backfill_notes(bucket, count)
    return 1 if count.errors else 0


class _SenderClients:
    """A client for each thread that sends requeue calls (each starts on an
    endpoint of its own choosing, so the calls spread over the nodes); all
    closed at the end of the ``with``."""

    def __init__(self, endpoint: str | None) -> None:
        self._endpoint = endpoint
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[Client] = []

    def mine(self) -> Client:
        got: Client | None = getattr(self._local, "client", None)
        if got is None:
            got = self._local.client = connect(self._endpoint)
            with self._lock:
                self._made.append(got)
        return got

    def __enter__(self) -> _SenderClients:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            made, self._made = self._made, []
        for c in made:
            c.close()


def in_order(pool: Executor, fn: Callable[[A], R], items: Iterable[A], window: int) -> Iterator[R]:
    """``fn`` of each item, run ``window`` at a time on ``pool``, yielded in the
    items' order; ``items`` is read no further ahead than the window."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


#: A plan and, for each destination it queued, None or the error refusing it.
Requeued = tuple[BackfillPlan, list[tuple[str, TristoreError | None]]]


def batches(plans: Iterable[BackfillPlan], size: int) -> Iterator[list[BackfillPlan]]:
    """Plans in lists queuing about ``size`` version-destination pairs each (a
    version's destinations stay together; a plan with none rides along)."""
    batch: list[BackfillPlan] = []
    pairs = 0
    for plan in plans:
        if batch and pairs + len(plan.queue) > size:
            yield batch
            batch, pairs = [], 0
        batch.append(plan)
        pairs += len(plan.queue)
    if batch:
        yield batch


def _requeue(c: Client, bucket: str, plans: list[BackfillPlan]) -> list[Requeued]:
    """Queue the plans' destinations in one call (a call refused as a whole:
    that error for each of them); items answered with a retriable error are
    sent again, a few times (requeuing twice is harmless)."""
    items = [(p.entry.key, p.entry.version_id, d) for p in plans for d in p.queue]
    answers: list[TristoreError | None] = [None] * len(items)
    todo = list(range(len(items)))
    for attempt in range(REQUEUE_TRIES):
        if not todo:
            break
        if attempt:
            time.sleep(min(2.0, 0.1 * 2**attempt))
        got = _requeue_call(c, bucket, [items[i] for i in todo])
        for i, answer in zip(todo, got, strict=True):
            answers[i] = answer
        todo = [i for i in todo if (a := answers[i]) is not None and a.retriable]
    it = iter(answers)
    return [(p, [(d, next(it)) for d in p.queue]) for p in plans]


def _requeue_call(
    c: Client, bucket: str, items: list[tuple[str, str, str]]
) -> list[TristoreError | None]:
    """One requeue call's answers, an error for each item when the call is
    refused as a whole. A call with more items than the node takes (its
    ``[node] replication_max_batch`` set below ``--batch``) goes again as two
    of half the size each."""
    try:
        return list(c.requeue_replications(bucket, items))
    except InvalidArgument as exc:
        if len(items) > 1 and "replication_max_batch" in str(exc):
            half = len(items) // 2
            return _requeue_call(c, bucket, items[:half]) + _requeue_call(c, bucket, items[half:])
        return [exc] * len(items)
    except TristoreError as exc:
        return [exc] * len(items)


def _count_requeues(
    bucket: str,
    plan: BackfillPlan,
    outcomes: Sequence[tuple[str, TristoreError | None]],
    dry_run: bool,
    count: BackfillCount,
    errors: _Errors,
    would: list[dict[str, object]] | None = None,
) -> None:
    e = plan.entry
    if dry_run:
        which = _which(e.version_id, e.delete_marker)
        for dest in plan.queue:
            if would is not None:
                would.append(
                    {
                        "key": e.key,
                        "version_id": e.version_id,
                        "delete_marker": e.delete_marker,
                        "destination": dest,
                    }
                )
            else:
                print(f"would queue: s3://{bucket}/{e.key} ({which}) to {dest}")
        count.queued += len(plan.queue)
        return
    for dest, exc in outcomes:
        if exc is None:
            count.queued += 1
        elif isinstance(exc, NoSuchKey | NoSuchVersion):
            count.gone += 1  # deleted since the listing: nothing left to send
        else:
            count.errors += 1
            errors.report(bucket, e.key, e.version_id, dest, exc, e.delete_marker)


def _backfill_notes(bucket: str, count: BackfillCount) -> None:
    if count.failed:
        print(
            f"{count.failed} FAILED: retry them with tristore replication dlq replay s3://{bucket}",
            file=sys.stderr,
        )


def cmd_verify(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    given = parse_to_endpoints(args.to_endpoint)
    prefix = args.prefix or ""
    count = VerifyCount()
    with contextlib.ExitStack() as stack:
        c = stack.enter_context(connect(args.endpoint))
        rules = _enabled_rules(c, bucket)
        dests = enabled_destinations(rules)
        remotes = {
            cluster: stack.enter_context(connect(endpoint))
            for cluster, endpoint in endpoints_for(dests, given).items()
        }
        listings = {}
        for d in dests:
            cluster, _, dest_bucket = d.partition("/")
            listings[d] = _entries(remotes[cluster], dest_bucket, prefix)
        diffs = diff_versions(
            _entries(c, bucket, prefix), listings, rules, _tags_reader(c, bucket), count
        )
        if args.json:
            found = [f.to_json() for f in diffs]
            head = {"bucket": bucket, "prefix": prefix, "destinations": dests}
            print_json({**head, **count.to_json(), "differences": found})
        else:
            for diff in diffs:
                print(diff.line())
            print(verify_summary(count, dests))
    return 1 if count.total else 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        failed = list(failed_targets(_entries(c, bucket, args.prefix or "")))
    if args.json:
        print_json({"bucket": bucket, "failed": [t.to_json() for t in failed]})
    elif failed:
        print(format_failed(failed))
    else:
        print(f"s3://{bucket} has no FAILED replication", file=sys.stderr)
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    if args.version_id is not None and args.key is None:
        raise InvalidArgument("--version-id: only with --key")
    if args.key is not None and args.prefix is not None:
        raise InvalidArgument("--key and --prefix: give one of them")
    if args.key is not None:
        check_key(args.key)
    dest = (
        parse_destination(args.destination, flag="--destination").name if args.destination else None
    )
    prefix = args.key if args.key is not None else args.prefix or ""
    requeued: list[FailedTarget] = []
    errors = _Errors(quiet=args.json)
    with connect(args.endpoint) as c:
        entries = _entries(c, bucket, prefix)
        for t in failed_targets(entries, args.key, args.version_id, dest):
            which = _which(t.version_id, t.delete_marker)
            try:
                c.requeue_replication(bucket, t.key, t.version_id, t.destination)
            except TristoreError as exc:
                errors.report(bucket, t.key, t.version_id, t.destination, exc, t.delete_marker)
                continue
            requeued.append(t)
            if not args.json:
                print(f"requeue: s3://{bucket}/{t.key} ({which}) to {t.destination}")
    errors.close()
    if args.json:
        fields = ("key", "version_id", "destination", "delete_marker")
        done = [{f: getattr(t, f) for f in fields} for t in requeued]
        print_doc(
            "replication dlq replay",
            {"bucket": bucket, "requeued": done, "failed": errors.failures},
        )
    elif not requeued and not errors.count:
        print(f"nothing to replay: no FAILED replication of s3://{bucket} matches", file=sys.stderr)
    else:
        print(f"requeued {len(requeued)} of {len(requeued) + errors.count} FAILED replication(s)")
    return 1 if errors.count else 0


# --- parsers --------------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    rep = sub.add_parser(
        "replication",
        help="a bucket's replication rules, status, backfill, verify and dead-letter queue",
        description="Bucket replication (S3's ReplicationConfiguration): rules that copy "
        "new versions to buckets of other clusters (the [[remotes]] of the cluster map). "
        "The source bucket must have versioning enabled (tristore version enable).",
    )
    actions = rep.add_subparsers(dest="replication_command", metavar="COMMAND", required=True)

    p = actions.add_parser(
        "put",
        parents=[common],
        help="replace a bucket's replication rules",
        description="Replace the bucket's rules with one rule built from the flags, or "
        "with the rules of --file (a JSON list of rules as 'get --json' prints them), "
        "and print the rules stored.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument(
        "--to",
        metavar="CLUSTER/BUCKET",
        action="append",
        help="a destination: a bucket of a remote cluster (repeatable)",
    )
    p.add_argument("--id", metavar="ID", help=f"the rule's id (default {DEFAULT_RULE_ID})")
    p.add_argument("--prefix", metavar="P", help="only keys starting with P")
    p.add_argument(
        "--tag", metavar="K=V", action="append", help="only objects with this tag (repeatable)"
    )
    p.add_argument(
        "--priority",
        metavar="N",
        type=int,
        help="where rules overlap on a destination, the highest wins (default 0)",
    )
    p.add_argument("--delete-markers", action="store_true", help="replicate delete markers too")
    p.add_argument(
        "--replica-modifications",
        action="store_true",
        help="replicate changes of tags, ACL and metadata made to replicas (two-way setups)",
    )
    p.add_argument(
        "--storage-class", metavar="C", help="the replicas' storage class (default: the source's)"
    )
    p.add_argument("--disabled", action="store_true", help="store the rule disabled")
    p.add_argument(
        "--file",
        metavar="RULES.json",
        help="read the rules from this JSON file ('-': stdin) instead of the flags",
    )
    p.add_argument("--json", action="store_true", help='print {"bucket": ..., "rules": [...]}')
    p.set_defaults(func=cmd_put)

    p = actions.add_parser(
        "get",
        parents=[common],
        help="show a bucket's replication rules",
        description="The bucket's rules: id, status, priority, prefix, tags, "
        "destinations, delete markers (one row a rule).",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"bucket": ..., "rules": [...]}; put --file reads it back',
    )
    p.set_defaults(func=cmd_get)

    p = actions.add_parser(
        "delete",
        parents=[common],
        help="remove every replication rule of a bucket",
        description="Remove the bucket's replication rules (no error when it has none).",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument(
        "--json", action="store_true", help='print {"schema": 1, "command": ..., "bucket": ...}'
    )
    p.set_defaults(func=cmd_delete)

    p = actions.add_parser(
        "status",
        parents=[common],
        help="replication status of a version, or counts for a bucket",
        description="s3://BUCKET/KEY: the version's replication status (PENDING, COMPLETED, "
        "FAILED, REPLICA, or none when no rule matched it). s3://BUCKET: how many versions "
        "and how many delete markers have each status, for at most --limit of them; each "
        "version is asked for its status (a HEAD), a delete marker (which HEAD cannot read) "
        "is counted by the status the version listing carries.",
    )
    p.add_argument("url", metavar="s3://BUCKET[/KEY]")
    p.add_argument("--version-id", metavar="ID", help="with a KEY: this version, not the newest")
    p.add_argument(
        "--limit",
        metavar="N",
        type=int,
        help=f"without a KEY: look at the first N versions and delete markers "
        f"(default {DEFAULT_STATUS_LIMIT})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_status)

    p = actions.add_parser(
        "backfill",
        parents=[common],
        help="queue the versions and delete markers written before a rule existed",
        description="Walk every version and delete marker of the bucket and queue each one "
        "that the bucket's rules send to a destination it has no replication status for "
        "(written before the rule, or while it was disabled); the replicators then send it. "
        "A delete marker is sent only by rules with delete-marker replication "
        "(put --delete-markers); one no rule sends is counted as sent nowhere. Replicas, "
        "versions already queued, replicated or FAILED (see dlq replay) are left alone. "
        "The counts: versions seen (delete markers included, and also counted apart), "
        "queued, already queued or replicated, failed, sent nowhere, replicas, deleted "
        "meanwhile, errors. Safe to run again. Exit 1 when a version could not be queued.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--prefix", metavar="P", help="only keys starting with P")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be queued; queue nothing"
    )
    p.add_argument(
        "--parallel",
        metavar="N",
        type=parallel_arg,
        help=f"versions whose tags are read at once, where a rule filters on tags (default "
        f"{DEFAULT_BACKFILL_PARALLEL}, at most {MAX_PARALLEL})",
    )
    p.add_argument(
        "--batch",
        metavar="N",
        type=batch_arg,
        help=f"versions queued by one call, {BACKFILL_CALLS} calls at once (default "
        f"{DEFAULT_BACKFILL_BATCH}, at most {MAX_BACKFILL_BATCH})",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="never draw the progress bar (it only appears when stderr is a terminal)",
    )
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.set_defaults(func=cmd_backfill)

    p = actions.add_parser(
        "verify",
        parents=[common],
        help="compare a bucket with its replication destinations",
        description="For every version and delete marker of the bucket (not a replica) "
        "that its rules send somewhere, check that each destination bucket holds the same "
        "version id with the same ETag (and delete-marker flag); list every difference "
        "(missing, different, pending, failed) and a summary. Exit 0: no differences; "
        "1: differences (or an error, then with a 'Code: message' line on stderr).",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument(
        "--to-endpoint",
        metavar="CLUSTER=HOST:PORT[,...]",
        action="append",
        help="the endpoints of a destination cluster (repeatable; one for each cluster "
        "the rules send to)",
    )
    p.add_argument("--prefix", metavar="P", help="only keys starting with P")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)

    dlq = actions.add_parser(
        "dlq",
        help="versions whose replication FAILED: list and replay them",
        description="The dead-letter queue: versions with a destination whose replication "
        "FAILED (the replicators gave up after max_attempts refusals).",
    )
    dlq_actions = dlq.add_subparsers(dest="dlq_command", metavar="COMMAND", required=True)
    p = dlq_actions.add_parser(
        "list",
        parents=[common],
        help="the versions with a FAILED destination",
        description="One row for each FAILED destination of a version: key, version id, "
        "destination (cluster/bucket), error.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--prefix", metavar="P", help="only keys starting with P")
    p.add_argument("--json", action="store_true", help='print {"bucket": ..., "failed": [...]}')
    p.set_defaults(func=cmd_dlq_list)

    p = dlq_actions.add_parser(
        "replay",
        parents=[common],
        help="queue FAILED versions and delete markers again",
        description="Queue every FAILED destination of the bucket's versions and delete "
        "markers again (or those the flags name), and print each one queued. Exit 1 when "
        "one could not be queued.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--key", metavar="K", help="only the versions of this key")
    p.add_argument("--version-id", metavar="V", help="with --key: only this version")
    p.add_argument("--destination", metavar="CLUSTER/BUCKET", help="only this destination")
    p.add_argument("--prefix", metavar="P", help="only keys starting with P (not with --key)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: bucket, requeued (key, version_id, destination, "
        "delete_marker), failed (the same with error {code, message})",
    )
    p.set_defaults(func=cmd_dlq_replay)
