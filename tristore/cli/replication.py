"""Bucket replication commands: ``tristore replication put|get|delete|status``.

``put`` builds one rule from flags (or reads a JSON list of rules, in the form
``get --json`` prints them) and replaces the bucket's rules with it; ``status``
shows how far a version, or every version of a bucket, has been replicated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore import replication
from tristore.cli.util import (
    S3Url,
    connect,
    format_table,
    parse_bucket_url,
    parse_kv_list,
    parse_object_url,
    parse_s3_url,
    print_json,
)
from tristore.errors import InvalidArgument, NoSuchKey, NoSuchVersion
from tristore.replication import Destination, Rule, rule_from_json
from tristore.validation import check_bucket_name, check_storage_class

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


def parse_destination(text: str, storage_class: str | None = None) -> Destination:
    """``--to CLUSTER/BUCKET``."""
    cluster, sep, bucket = text.partition("/")
    if not sep or not cluster or not bucket or "/" in bucket:
        raise InvalidArgument(f"--to {text!r} must be of the form CLUSTER/BUCKET")
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
    return rules_from_json(Path(path).read_text(encoding="utf-8"), path)


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

    #: Versions by replication status, every one of STATUSES first.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    #: Delete markers seen (a HEAD cannot read a marker, so they have no status here).
    delete_markers: int = 0
    #: Versions deleted between the listing and their HEAD.
    gone: int = 0
    #: True when the limit stopped the walk before the bucket's last version.
    truncated: bool = False

    @property
    def versions(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, object]:
        return {
            "counts": dict(self.counts),
            "versions": self.versions,
            "delete_markers": self.delete_markers,
            "gone": self.gone,
            "truncated": self.truncated,
        }


def count_statuses(
    entries: Iterable[VersionEntry], status_of: Callable[[VersionEntry], str | None], limit: int
) -> StatusCount:
    """Count the first ``limit`` versions and delete markers of ``entries`` by
    the status ``status_of`` gives (None: the version is gone). ``entries`` is
    read lazily and no further than the limit, so a listing stops there too."""
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
            out.delete_markers += 1
            continue
        status = status_of(e)
        if status is None:
            out.gone += 1
        else:
            label = status_label(status)
            out.counts[label] = out.counts.get(label, 0) + 1
    return out


def format_status_count(count: StatusCount) -> str:
    return format_table(("STATUS", "VERSIONS"), count.counts.items())


def status_notes(count: StatusCount, limit: int) -> list[str]:
    """What the counts leave out, for stderr."""
    notes = []
    if count.delete_markers:
        notes.append(f"{count.delete_markers} delete marker(s) not counted (HEAD has no status)")
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

    return status_of


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
        info = c.head_object(url.bucket, url.key, version_id=args.version_id)
    if args.json:
        print_json(
            {
                "bucket": info.bucket,
                "key": info.key,
                "version_id": info.version_id,
                "replication_status": info.replication_status,
            }
        )
    else:
        print(status_label(info.replication_status))
    return 0


# --- parsers --------------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    rep = sub.add_parser(
        "replication",
        help="set, show and remove a bucket's replication rules; replication status",
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
    p.set_defaults(func=cmd_delete)

    p = actions.add_parser(
        "status",
        parents=[common],
        help="replication status of a version, or counts for a bucket",
        description="s3://BUCKET/KEY: the version's replication status (PENDING, COMPLETED, "
        "FAILED, REPLICA, or none when no rule matched it). s3://BUCKET: how many versions "
        "have each status; a version listing does not carry the status, so this asks for "
        "each version (a HEAD), at most --limit of them.",
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
