"""Bucket policies in S3's JSON form: parsing (with S3's MalformedPolicy
errors) and evaluation (explicit deny wins).

The supported subset:

- ``Version`` ``2012-10-17`` (or ``2008-10-17``), ``Statement`` (one or a list),
  each with ``Sid`` (optional), ``Effect`` (``Allow``/``Deny``), ``Principal``
  (``"*"``, ``{"AWS": "*"}``, or users: ``{"AWS": ["alice",
  "arn:aws:iam::tristore:user/bob"]}``), ``Action`` (``s3:GetObject``,
  ``s3:Get*``, ``s3:*``; case-insensitive) and ``Resource`` (``arn:aws:s3:::BUCKET``
  and ``arn:aws:s3:::BUCKET/KEY-PATTERN``, ``*`` and ``?`` wildcards; only the
  policy's own bucket).
- ``Condition`` with the operators ``StringEquals``, ``StringNotEquals``,
  ``StringLike``, ``StringNotLike``, ``IpAddress``, ``NotIpAddress``, ``Bool``
  on the keys ``aws:SourceIp``, ``aws:SecureTransport``, ``aws:username`` and
  ``s3:prefix`` (ListObjects' prefix). Values of one key are ORed, keys and
  operators ANDed; a key the request does not have matches only the ``Not``
  operators, as in S3.

Not supported (MalformedPolicy): ``NotAction``, ``NotPrincipal``,
``NotResource``, other operators and keys.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tristore.errors import MalformedPolicy

ALLOW = "Allow"
DENY = "Deny"
MAX_POLICY_BYTES = 20 * 1024
ARN_PREFIX = "arn:aws:s3:::"
USER_ARN = re.compile(r"^arn:aws:iam::[^:]*:user/(?P<name>.+)$")

#: Every action a policy can name (tristore's RPCs map to these).
ACTIONS = frozenset(
    a.lower()
    for a in (
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:ListBucket",
        "s3:ListAllMyBuckets",
        "s3:ListBucketVersions",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAttributes",
        "s3:GetObjectVersionAttributes",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:DeleteObjectTagging",
        "s3:GetObjectAcl",
        "s3:PutObjectAcl",
        "s3:GetBucketVersioning",
        "s3:PutBucketVersioning",
        "s3:AbortMultipartUpload",
        "s3:ListBucketMultipartUploads",
        "s3:ListMultipartUploadParts",
        "s3:GetReplicationConfiguration",
        "s3:PutReplicationConfiguration",
        "s3:ReplicateObject",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:GetBucketCORS",
        "s3:PutBucketCORS",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetBucketAcl",
        "s3:PutBucketAcl",
        "s3:GetBucketLocation",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:GetBucketWebsite",
        "s3:DeleteBucketWebsite",
        "s3:GetBucketLogging",
        "s3:GetBucketNotification",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketRequestPayment",
        "s3:ListenBucketNotification",
    )
)
OPERATORS = frozenset(
    (
        "StringEquals",
        "StringNotEquals",
        "StringLike",
        "StringNotLike",
        "IpAddress",
        "NotIpAddress",
        "Bool",
    )
)
CONDITION_KEYS = {
    "aws:sourceip": "aws:SourceIp",
    "aws:securetransport": "aws:SecureTransport",
    "aws:username": "aws:username",
    "s3:prefix": "s3:prefix",
}


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # canonical spelling, as in CONDITION_KEYS' values
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str
    #: User names, or ``*`` for everyone (the anonymous caller included).
    principals: tuple[str, ...]
    actions: tuple[str, ...]  # lower case patterns
    resources: tuple[str, ...]  # patterns over "bucket" / "bucket/key"
    conditions: tuple[Condition, ...] = ()
    sid: str = ""


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    text: str = ""


@dataclass(frozen=True)
class Request:
    """What a policy is asked about."""

    #: The caller's user name; None for an anonymous (unsigned) caller.
    user: str | None
    action: str  # e.g. "s3:GetObject"
    bucket: str
    key: str | None = None  # None: the bucket itself
    context: Mapping[str, str] | None = None

    @property
    def resource(self) -> str:
        return self.bucket if self.key is None else f"{self.bucket}/{self.key}"


def _list(v: Any, what: str, empty_ok: bool = False) -> list[Any]:
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(x, str) and (x or empty_ok) for x in items):
        raise MalformedPolicy(f"{what} must be a non-empty string or list of strings")
    return items


def _principals(raw: Any) -> tuple[str, ...]:
    if raw == "*":
        return ("*",)
    if not isinstance(raw, dict) or set(raw) != {"AWS"}:
        raise MalformedPolicy('Principal must be "*" or {"AWS": ...} naming users')
    out = []
    for p in _list(raw["AWS"], "Principal AWS"):
        m = USER_ARN.match(p)
        out.append(m["name"] if m else p)
        if not m and (":" in p or "/" in p) and p != "*":
            raise MalformedPolicy(f"Invalid principal in policy: {p!r}")
    return tuple(out)


def _resource(raw: str, bucket: str) -> str:
    if not raw.startswith(ARN_PREFIX):
        raise MalformedPolicy(f"Policy has invalid resource: {raw!r} (expected arn:aws:s3:::...)")
    res = raw[len(ARN_PREFIX) :]
    head = res.split("/", 1)[0]
    if not _match(head, bucket):
        raise MalformedPolicy(f"Policy has invalid resource: {raw!r} is not of bucket {bucket!r}")
    return res


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise MalformedPolicy("Condition must be an object")
    out = []
    for op, block in raw.items():
        if op not in OPERATORS:
            raise MalformedPolicy(
                f"Invalid Condition type: {op!r}; supported: {', '.join(sorted(OPERATORS))}"
            )
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(f"Condition {op} must map keys to values")
        for key, values in block.items():
            canon = CONDITION_KEYS.get(str(key).lower())
            if canon is None:
                raise MalformedPolicy(
                    f"Policy has an invalid condition key: {key!r}; supported: "
                    f"{', '.join(CONDITION_KEYS.values())}"
                )
            raw_vals = str(values).lower() if isinstance(values, bool) else values
            vals = _list(raw_vals, op, empty_ok=True)
            if op in ("IpAddress", "NotIpAddress"):
                for v in vals:
                    try:
                        ipaddress.ip_network(v, strict=False)
                    except ValueError:
                        raise MalformedPolicy(f"{op}: {v!r} is not an IP address or CIDR") from None
            if op == "Bool" and any(v.lower() not in ("true", "false") for v in vals):
                raise MalformedPolicy("Bool conditions take true or false")
            out.append(Condition(op, canon, tuple(vals)))
    return tuple(out)


def _statement(raw: Any, bucket: str) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy("every Statement must be an object")
    for unsupported in ("NotAction", "NotPrincipal", "NotResource"):
        if unsupported in raw:
            raise MalformedPolicy(f"{unsupported} is not supported")
    unknown = set(raw) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    if unknown:
        raise MalformedPolicy(f"unknown field(s) in Statement: {sorted(unknown)}")
    effect = raw.get("Effect")
    if effect not in (ALLOW, DENY):
        raise MalformedPolicy('Effect must be "Allow" or "Deny"')
    for need in ("Principal", "Action", "Resource"):
        if need not in raw:
            raise MalformedPolicy(f"Statement is missing required field {need}")
    actions = tuple(a.lower() for a in _list(raw["Action"], "Action"))
    for a in actions:
        if a != "*" and not a.startswith("s3:"):
            raise MalformedPolicy(f"Policy has invalid action: {a!r}")
        if "*" not in a and "?" not in a and a not in ACTIONS:
            raise MalformedPolicy(f"Policy has invalid action: {a!r}")
    resources = tuple(_resource(r, bucket) for r in _list(raw["Resource"], "Resource"))
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise MalformedPolicy("Sid must be a string")
    return Statement(
        effect,
        _principals(raw["Principal"]),
        actions,
        resources,
        _conditions(raw.get("Condition", {})),
        sid,
    )


def parse(text: str, bucket: str) -> Policy:
    """A policy document for ``bucket``; MalformedPolicy saying what is wrong."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise MalformedPolicy(f"a policy must be at most {MAX_POLICY_BYTES} bytes")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise MalformedPolicy(f"the policy is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MalformedPolicy("the policy must be a JSON object")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise MalformedPolicy(f"unknown top-level field(s): {sorted(unknown)}")
    if doc.get("Version", "2012-10-17") not in ("2012-10-17", "2008-10-17"):
        raise MalformedPolicy('Version must be "2012-10-17"')
    raw = doc.get("Statement")
    if raw is None:
        raise MalformedPolicy("the policy has no Statement")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicy("the policy has no Statement")
    return Policy(tuple(_statement(s, bucket) for s in items), text)


@functools.lru_cache(maxsize=4096)
def _pattern(p: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
    return re.compile(body, re.S | (re.I if fold else 0))


def _match(pattern: str, value: str, fold: bool = False) -> bool:
    return _pattern(pattern, fold).fullmatch(value) is not None


def _ip_in(value: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def _condition_holds(c: Condition, ctx: Mapping[str, str]) -> bool:
    value = ctx.get(c.key)
    negated = "Not" in c.operator
    if value is None:
        return negated
    if c.operator == "StringEquals":
        return value in c.values
    if c.operator == "StringNotEquals":
        return value not in c.values
    if c.operator == "StringLike":
        return any(_match(v, value) for v in c.values)
    if c.operator == "StringNotLike":
        return not any(_match(v, value) for v in c.values)
    if c.operator == "IpAddress":
        return _ip_in(value, c.values)
    if c.operator == "NotIpAddress":
        return not _ip_in(value, c.values)
    if c.operator == "Bool":
        return value.lower() in (v.lower() for v in c.values)
    return False


def _applies(s: Statement, req: Request) -> bool:
    if "*" not in s.principals and (req.user is None or req.user not in s.principals):
        return False
    if not any(_match(a, req.action, fold=True) for a in s.actions):
        return False
    if not any(_match(r, req.resource) for r in s.resources):
        return False
    ctx = req.context or {}
    return all(_condition_holds(c, ctx) for c in s.conditions)


def evaluate(policy: Policy | None, req: Request) -> str | None:
    """``Deny`` if a statement denies the request (explicit deny wins), else
    ``Allow`` if one allows it, else None (the default applies)."""
    if policy is None:
        return None
    verdict = None
    for s in policy.statements:
        if _applies(s, req):
            if s.effect == DENY:
                return DENY
            verdict = ALLOW
    return verdict
