"""Bucket replication rules (S3's ReplicationConfiguration): what they are, how
they are checked, and which destinations a version goes to.

A rule filters by key prefix and tags and names one or more destinations (a
cluster of ``[[remotes]]`` and a bucket there). Delete markers follow a rule
only when it says so; deleting a specific version is never replicated, as in
S3. Where enabled rules overlap on one destination, the highest priority wins
(its storage-class and owner overrides apply).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tristore import validation
from tristore.errors import InvalidArgument, InvalidRequest

#: A source version's states, and a replica's.
PENDING = "PENDING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
REPLICA = "REPLICA"

MAX_RULES = 1000
_RULE_ID = re.compile(r"[\w.\-]{1,255}")


@dataclass(frozen=True, slots=True)
class Destination:
    cluster: str
    bucket: str
    storage_class: str = ""
    owner: str = ""

    @property
    def name(self) -> str:
        """How statuses name the destination: ``cluster/bucket``."""
        return f"{self.cluster}/{self.bucket}"

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "bucket": self.bucket,
            "storage_class": self.storage_class,
            "owner": self.owner,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    destinations: tuple[Destination, ...]
    priority: int = 0
    enabled: bool = True
    prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    delete_markers: bool = False
    replica_modifications: bool = False

    def matches(self, key: str, tags: Mapping[str, str]) -> bool:
        return (
            self.enabled
            and key.startswith(self.prefix)
            and all(tags.get(k) == v for k, v in self.tags.items())
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "priority": self.priority,
            "status": "Enabled" if self.enabled else "Disabled",
            "prefix": self.prefix,
            "tags": dict(self.tags),
            "destinations": [d.to_json() for d in self.destinations],
            "delete_markers": self.delete_markers,
            "replica_modifications": self.replica_modifications,
        }


def rule_from_json(raw: Mapping[str, object]) -> Rule:
    """A rule from its JSON form (as ``to_json`` writes it); InvalidArgument if malformed."""
    try:
        status = str(raw.get("status", "Enabled"))
        if status not in ("Enabled", "Disabled"):
            raise InvalidArgument(f"rule status must be Enabled or Disabled, not {status!r}")
        dests = raw.get("destinations", [])
        tags = raw.get("tags", {})
        if not isinstance(dests, list) or not isinstance(tags, dict):
            raise InvalidArgument("a rule's destinations is a list and its tags an object")
        return Rule(
            id=str(raw["id"]),
            priority=int(raw.get("priority", 0)),  # type: ignore[call-overload]
            enabled=status == "Enabled",
            prefix=str(raw.get("prefix", "")),
            tags={str(k): str(v) for k, v in tags.items()},
            destinations=tuple(
                Destination(
                    str(d["cluster"]),
                    str(d["bucket"]),
                    str(d.get("storage_class", "")),
                    str(d.get("owner", "")),
                )
                for d in dests
            ),
            delete_markers=bool(raw.get("delete_markers", False)),
            replica_modifications=bool(raw.get("replica_modifications", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgument(f"malformed replication rule {raw!r}: {exc}") from None


#: A rule's priority is stored as a 32-bit integer.
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1


def check_rules(
    rules: Iterable[Rule], clusters: Iterable[str], versioning: str
) -> tuple[Rule, ...]:
    """Validate a bucket's rules; ``clusters`` are the names a destination may use."""
    out = tuple(rules)
    known = set(clusters)
    if versioning != "Enabled":
        raise InvalidRequest(
            "replication needs versioning Enabled on the source bucket "
            "(tristore version enable s3://BUCKET)"
        )
    if not out:
        raise InvalidArgument("give at least one rule (DeleteBucketReplication removes them all)")
    if len(out) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules, not {len(out)}")
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("rule ids must be unique")
    for r in out:
        if not _RULE_ID.fullmatch(r.id):
            raise InvalidArgument(f"rule id {r.id!r}: 1 to 255 letters, digits, '_', '-' or '.'")
        if not r.destinations:
            raise InvalidArgument(f"rule {r.id!r} has no destination")
        if not MIN_PRIORITY <= r.priority <= MAX_PRIORITY:
            raise InvalidArgument(
                f"rule {r.id!r}: priority {r.priority} is out of range "
                f"({MIN_PRIORITY} to {MAX_PRIORITY})"
            )
        validation.normalize_tags(dict(r.tags))
        for d in r.destinations:
            validation.check_bucket_name(d.bucket)
            if d.cluster not in known:
                names = ", ".join(sorted(known)) or "none: add [[remotes]] to the cluster map"
                raise InvalidArgument(
                    f"rule {r.id!r}: destination cluster {d.cluster!r} is not a known remote "
                    f"({names})"
                )
            if d.storage_class:
                validation.check_storage_class(d.storage_class)
    return out


def destinations_for(
    rules: Iterable[Rule], key: str, tags: Mapping[str, str], delete_marker: bool = False
) -> list[Destination]:
    """Where a new version of ``key`` goes: one entry per destination, from the
    highest-priority enabled rule that matches it."""
    chosen: dict[str, tuple[int, Destination]] = {}
    for r in rules:
        if not r.matches(key, tags) or (delete_marker and not r.delete_markers):
            continue
        for d in r.destinations:
            held = chosen.get(d.name)
            if held is None or r.priority > held[0]:
                chosen[d.name] = (r.priority, d)
    return [d for _, d in sorted(chosen.values(), key=lambda pd: pd[1].name)]


def overall_status(targets: Mapping[str, str]) -> str:
    """A source version's status from its destinations' (S3: FAILED if any failed)."""
    if not targets:
        return ""
    states = [s.split(":", 1)[0] for s in targets.values()]
    if FAILED in states:
        return FAILED
    if all(s == COMPLETED for s in states):
        return COMPLETED
    return PENDING


def key_digest(bucket: str, key: str) -> bytes:
    """Eight bytes of a hash of the key's name: which replicator's share it is
    in (:func:`share_of`). A node keeps it in its replication index, so it can
    send each replicator only its share's entries."""
    return hashlib.blake2b(f"{bucket}\x00{key}".encode(), digest_size=8).digest()


def share_of(digest: bytes, shares: int) -> int:
    """The share (0 .. ``shares`` - 1) of the keys a :func:`key_digest` is of:
    replicator i of n handles the keys of share i."""
    return int.from_bytes(digest, "big") % shares
