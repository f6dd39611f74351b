"""Bucket CORS configurations as S3 has them: the rules, their validation
(S3's limits and messages), how a request is matched against them, and the
form they are stored in with the bucket record (node/buckets.py).

A rule allows a cross-origin request when the request's origin matches one of
its ``AllowedOrigin`` patterns (at most one ``*`` each), its method (for a
preflight: ``Access-Control-Request-Method``) is one of its
``AllowedMethod``s, and (preflight only) every header named in
``Access-Control-Request-Headers`` matches one of its ``AllowedHeader``
patterns. Origins and headers compare case-insensitively, methods exactly.
The first rule that allows a request answers it, as in S3.

Pure functions of frozen dataclasses, so that they are tested without a server;
node/s3/xml.py reads and writes S3's XML form, node/s3/cors.py answers with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tristore.errors import InvalidRequest, MalformedXML

#: The methods a rule may allow (S3's list).
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
#: At most this many rules a configuration.
MAX_RULES = 100
#: At most this long a rule's ID.
MAX_ID = 255
#: The stored form's format version (the first field of the stored JSON).
FORMAT = 1


@dataclass(frozen=True)
class Rule:
    """One CORSRule."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    #: None: not given (no Access-Control-Max-Age is sent).
    max_age_seconds: int | None = None
    id: str = ""


@dataclass(frozen=True)
class Match:
    """The rule that allows a request, and how its origin is answered."""

    rule: Rule
    #: The request's origin, or ``*`` when only a ``*`` pattern matched it
    #: (then no Access-Control-Allow-Credentials is sent, as S3 does).
    allow_origin: str

    @property
    def credentials(self) -> bool:
        return self.allow_origin != "*"


def _one_wildcard(what: str, value: str) -> None:
    if value.count("*") > 1:
        raise InvalidRequest(f'{what} "{value}" can not have more than one wildcard.')


def check_rules(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """``rules`` as S3 accepts them, or MalformedXML / InvalidRequest naming
    what is wrong."""
    if not rules:
        raise MalformedXML("a CORSConfiguration needs at least one <CORSRule>")
    if len(rules) > MAX_RULES:
        raise InvalidRequest(
            f"a CORSConfiguration holds at most {MAX_RULES} rules; this one has {len(rules)}"
        )
    for r in rules:
        if not r.allowed_origins:
            raise MalformedXML("a <CORSRule> needs at least one <AllowedOrigin>")
        if not r.allowed_methods:
            raise MalformedXML("a <CORSRule> needs at least one <AllowedMethod>")
        if len(r.id) > MAX_ID:
            raise InvalidRequest(f"a CORSRule's ID is at most {MAX_ID} characters")
        for m in r.allowed_methods:
            if m not in METHODS:
                raise InvalidRequest(
                    "Found unsupported HTTP method in CORS config. Unsupported method is "
                    f"{m} (allowed: {', '.join(METHODS)})"
                )
        for o in r.allowed_origins:
            if not o:
                raise InvalidRequest("an <AllowedOrigin> may not be empty")
            _one_wildcard("AllowedOrigin", o)
        for h in r.allowed_headers:
            _one_wildcard("AllowedHeader", h)
        for h in r.expose_headers:
            if "*" in h:
                raise InvalidRequest(
                    f'ExposeHeader "{h}" contains wildcard. '
                    "We currently do not support wildcard for ExposeHeader."
                )
        if r.max_age_seconds is not None and r.max_age_seconds < 0:
            raise InvalidRequest("MaxAgeSeconds may not be negative")
    return tuple(rules)


def wildcard_match(pattern: str, value: str) -> bool:
    """``value`` matches ``pattern`` (at most one ``*``, any run of
    characters), case-insensitively."""
    pattern, value = pattern.lower(), value.lower()
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def request_headers(raw: str | None) -> list[str]:
    """The header names of an ``Access-Control-Request-Headers`` value."""
    return [h.strip() for h in (raw or "").split(",") if h.strip()]


def _origin(rule: Rule, origin: str) -> str | None:
    """How ``rule`` answers ``origin`` (None: it does not allow it)."""
    matched = [p for p in rule.allowed_origins if wildcard_match(p, origin)]
    if not matched:
        return None
    return origin if any(p != "*" for p in matched) else "*"


def match(
    rules: Sequence[Rule], origin: str, method: str, headers: Sequence[str] = ()
) -> Match | None:
    """The first rule that allows a request from ``origin`` with ``method``
    naming ``headers`` (a preflight's Access-Control-Request-Headers; none
    for an actual request), or None."""
    for rule in rules:
        if method not in rule.allowed_methods:
            continue
        allow = _origin(rule, origin)
        if allow is None:
            continue
        if all(any(wildcard_match(p, h) for p in rule.allowed_headers) for h in headers):
            return Match(rule, allow)
    return None


# -- the stored form (a bucket record's metadata entry) ---------------------------


def dump(rules: Sequence[Rule]) -> str:
    """The stored form of ``rules``: JSON, versioned."""
    return json.dumps(
        {
            "v": FORMAT,
            "rules": [
                {
                    "id": r.id,
                    "origins": list(r.allowed_origins),
                    "methods": list(r.allowed_methods),
                    "headers": list(r.allowed_headers),
                    "expose": list(r.expose_headers),
                    "max_age": r.max_age_seconds,
                }
                for r in rules
            ],
        },
        separators=(",", ":"),
    )


def load(text: str) -> tuple[Rule, ...]:
    """The rules of a stored form ("" : none)."""
    if not text:
        return ()
    doc = json.loads(text)
    if doc.get("v") != FORMAT:
        raise ValueError(f"a CORS configuration of format {doc.get('v')!r} is not known here")
    return tuple(
        Rule(
            tuple(r["origins"]),
            tuple(r["methods"]),
            tuple(r["headers"]),
            tuple(r["expose"]),
            r["max_age"],
            r["id"],
        )
        for r in doc["rules"]
    )
