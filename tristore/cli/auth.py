"""Users, access keys and bucket policies:

tristore admin user add NAME [--role user|admin|replication] [--bucket B ...]
tristore admin user ls                   tristore admin user rm NAME
tristore admin key create USER           # prints the secret, once
tristore admin key ls [--user U]
tristore admin key revoke ACCESS_KEY_ID
tristore policy put s3://BUCKET FILE|-   tristore policy get s3://BUCKET
tristore policy rm s3://BUCKET

Every one takes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tristore import credentials
from tristore.cli.util import (
    cannot,
    connect,
    format_table,
    parse_s3_url,
    print_doc,
    print_json,
)
from tristore.errors import InvalidArgument


def _when(d: Any) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S") if d is not None else "-"


def cmd_user_add(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        u = c.create_user(args.name, args.role, args.bucket or ())
    if args.json:
        print_doc("admin user add", _user_json(u))
    else:
        print(f"user {u.name} ({u.role}) added")
    return 0


def _user_json(u: Any) -> dict[str, object]:
    return {"name": u.name, "role": u.role, "buckets": list(u.buckets), "created": u.created}


def cmd_user_ls(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        users = c.list_users()
    if args.json:
        print_json([_user_json(u) for u in users])
        return 0
    rows = [[u.name, u.role, ",".join(u.buckets) or "-", _when(u.created)] for u in users]
    print(format_table(["NAME", "ROLE", "BUCKETS", "CREATED"], rows))
    return 0


def cmd_user_rm(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        c.delete_user(args.name)
    if args.json:
        print_doc("admin user rm", {"name": args.name})
    else:
        print(f"user {args.name} removed, with its access keys")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        k = c.create_access_key(args.user)
    if args.json:
        print_json(
            {
                "access_key_id": k.access_key_id,
                "secret_access_key": k.secret_access_key,
                "user": k.user,
                "created": k.created,
            }
        )
        return 0
    print(f"# access key of {k.user}; the secret is shown only now")
    print(f"export {credentials.ACCESS_KEY_ENV}={k.access_key_id}")
    print(f"export {credentials.SECRET_KEY_ENV}={k.secret_access_key}")
    return 0


def cmd_key_ls(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        keys = c.list_access_keys(args.user)
    if args.json:
        print_json(
            [{"access_key_id": k.access_key_id, "user": k.user, "created": k.created} for k in keys]
        )
        return 0
    rows = [[k.access_key_id, k.user, _when(k.created)] for k in keys]
    print(format_table(["ACCESS KEY ID", "USER", "CREATED"], rows))
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    with connect(args.endpoint) as c:
        c.revoke_access_key(args.access_key_id)
    if args.json:
        print_doc("admin key revoke", {"access_key_id": args.access_key_id})
    else:
        print(f"access key {args.access_key_id} revoked")
    return 0


def _bucket(url: str) -> str:
    u = parse_s3_url(url)
    if u.key:
        raise InvalidArgument(f"a policy is a bucket's: give s3://BUCKET, not {url!r}")
    return u.bucket


def cmd_policy_put(args: argparse.Namespace) -> int:
    bucket = _bucket(args.url)
    if args.file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.file).read_text()
        except OSError as e:
            raise cannot("read", args.file, e) from None
    with connect(args.endpoint) as c:
        c.put_bucket_policy(bucket, text)
    if args.json:
        print_doc("policy put", {"bucket": bucket})
    else:
        print(f"policy of s3://{bucket} set")
    return 0


def cmd_policy_get(args: argparse.Namespace) -> int:
    bucket = _bucket(args.url)
    with connect(args.endpoint) as c:
        text = c.get_bucket_policy(bucket)
    if args.json:
        # The document itself, not a string of it: the cluster stores only
        # policies it could parse.
        print_doc("policy get", {"bucket": bucket, "policy": json.loads(text)})
    else:
        print(text)
    return 0


def cmd_policy_rm(args: argparse.Namespace) -> int:
    bucket = _bucket(args.url)
    with connect(args.endpoint) as c:
        c.delete_bucket_policy(bucket)
    if args.json:
        print_doc("policy rm", {"bucket": bucket})
    else:
        print(f"policy of s3://{bucket} removed")
    return 0


def register_admin(actions: Any, common: argparse.ArgumentParser) -> None:
    """``admin user ...`` and ``admin key ...`` under ``tristore admin``."""
    user = actions.add_parser("user", help="users of the cluster (admin role)")
    ua = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    p = ua.add_parser("add", parents=[common], help="add a user")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--role",
        choices=("user", "admin", "replication"),
        default="user",
        help="user (default): owns the buckets it creates; admin: may do anything; "
        "replication: may only apply replicas, to the --bucket buckets",
    )
    p.add_argument(
        "--bucket",
        action="append",
        help="a replication user: a bucket it may apply replicas to (repeatable; * for any)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"schema": 1, "command", "name", "role", "buckets", "created"}',
    )
    p.set_defaults(func=cmd_user_add)
    p = ua.add_parser("ls", parents=[common], help="list users")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_user_ls)
    p = ua.add_parser("rm", parents=[common], help="remove a user and its keys")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "command", "name"}')
    p.set_defaults(func=cmd_user_rm)

    key = actions.add_parser("key", help="access keys (admin role)")
    ka = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    p = ka.add_parser("create", parents=[common], help="a new key of USER; prints its secret once")
    p.add_argument("user", metavar="USER")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_key_create)
    p = ka.add_parser("ls", parents=[common], help="list access keys (never secrets)")
    p.add_argument("--user", help="only this user's keys")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_key_ls)
    p = ka.add_parser("revoke", parents=[common], help="delete an access key")
    p.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    p.add_argument(
        "--json", action="store_true", help='print {"schema": 1, "command", "access_key_id"}'
    )
    p.set_defaults(func=cmd_key_revoke)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """``tristore policy put|get|rm``."""
    pol = sub.add_parser(
        "policy",
        help="bucket policies (S3's JSON form)",
        description="Set, show or remove a bucket's policy (docs/security.md).",
    )
    pa = pol.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    p = pa.add_parser("put", parents=[common], help="set a bucket's policy from a JSON file")
    p.add_argument("url", metavar="s3://BUCKET")
    p.add_argument("file", metavar="FILE", help="the policy document ('-': stdin)")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "command", "bucket"}')
    p.set_defaults(func=cmd_policy_put)
    p = pa.add_parser("get", parents=[common], help="print a bucket's policy")
    p.add_argument("url", metavar="s3://BUCKET")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"schema": 1, "command", "bucket", "policy": {...}}',
    )
    p.set_defaults(func=cmd_policy_get)
    p = pa.add_parser("rm", parents=[common], help="remove a bucket's policy")
    p.add_argument("url", metavar="s3://BUCKET")
    p.add_argument("--json", action="store_true", help='print {"schema": 1, "command", "bucket"}')
    p.set_defaults(func=cmd_policy_rm)
