"""``tristore presign s3://BUCKET/KEY``: a URL of the S3 HTTP API that lets
whoever holds it GET (or PUT, HEAD, DELETE) one object until it expires, as
``aws s3 presign`` prints one; with ``--method POST``, a browser upload form
(POST Object) as a curl command, as boto3's ``generate_presigned_post`` makes
one. Signed locally with the caller's access key; no call is made to the
cluster."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
from typing import TYPE_CHECKING, Any

from tristore.cli.util import not_empty, parse_kv_list, parse_object_url, parse_size, print_doc
from tristore.errors import InvalidArgument

if TYPE_CHECKING:
    from tristore.credentials import Signer

#: Seconds a URL lives unless --expires-in says otherwise (aws s3 presign's default).
DEFAULT_EXPIRES_S = 3600
METHODS = ("GET", "PUT", "HEAD", "DELETE", "POST")
#: S3's limit (tristore.presign.MAX_PRESIGN_EXPIRES_S, not imported: the parser stays light).
MAX_EXPIRES_S = 7 * 24 * 3600
#: tristore.presign.S3_ENDPOINT_ENV, not imported for the same reason.
ENDPOINT_ENV = "AWS_ENDPOINT_URL"


def parse_expires_in(text: str) -> int:
    """``--expires-in``: whole seconds, 1 to 604,800 (7 days); InvalidArgument
    (an S3 code, exit 1) otherwise, as S3 answers a URL that asks for more."""
    try:
        seconds = int(text.strip())
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_EXPIRES_S:
        raise InvalidArgument(
            f"--expires-in must be a whole number of seconds from 1 to {MAX_EXPIRES_S} "
            f"(7 days, S3's limit), not {text!r}"
        )
    return seconds


def cmd_presign(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    expires_in = parse_expires_in(args.expires_in)
    s3_endpoint = not_empty(args.s3_endpoint, "--s3-endpoint", "https://HOST:PORT", ENDPOINT_ENV)
    # Here, not at the top: the parser (and --help) stays free of the signing code.
    from tristore import credentials, presign

    creds = credentials.from_env()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    signer = credentials.Signer(creds) if creds is not None else None
    if args.method == "POST":
        return _form(args, url.bucket, url.key, expires_in, s3_endpoint, signer, now)
    if args.field or args.max_size is not None:
        raise InvalidArgument("--field and --max-size are for a form: --method POST")
    link = presign.presign_url(
        signer,
        url.bucket,
        url.key,
        method=args.method,
        expires_in=expires_in,
        version_id=args.version_id,
        endpoint_url=s3_endpoint,
        now=now,
    )
    if not args.json:
        print(link)
        return 0
    print_doc(
        "presign",
        {
            "url": link,
            "method": args.method,
            "bucket": url.bucket,
            "key": url.key,
            "version_id": args.version_id,
            "expires_in": expires_in,
            "expires": now + dt.timedelta(seconds=expires_in),
        },
    )
    return 0


def _form(
    args: argparse.Namespace,
    bucket: str,
    key: str,
    expires_in: int,
    s3_endpoint: str | None,
    signer: Signer | None,
    now: dt.datetime,
) -> int:
    """``--method POST``: a browser upload form, printed as the curl command
    that uploads FILE with it (or, with --json, its URL and fields)."""
    from tristore import presign

    if args.version_id:
        raise InvalidArgument("--version-id is not for a form: an upload makes a new version")
    fields = parse_kv_list(args.field, "--field")
    conditions: list[list[Any]] = []
    if args.max_size is not None:
        conditions.append(["content-length-range", 0, parse_size(args.max_size)])
    form = presign.presign_post(
        signer,
        bucket,
        key,
        expires_in=expires_in,
        fields=fields,
        conditions=conditions,
        endpoint_url=s3_endpoint,
        now=now,
    )
    if args.json:
        print_doc(
            "presign",
            {
                "url": form.url,
                "method": "POST",
                "bucket": bucket,
                "key": key,
                "fields": form.fields,
                "expires_in": expires_in,
                "expires": now + dt.timedelta(seconds=expires_in),
            },
        )
        return 0
    parts = ["curl", "--cacert", "$AWS_CA_BUNDLE"]
    for name, value in form.fields.items():
        # --form-string: taken as it is (-F reads '@', '<' and ';type=').
        parts += ["--form-string", shlex.quote(f"{name}={value}")]
    # The file goes last: fields after it are not read.
    print(" ".join([*parts, "-F", "file=@FILE", shlex.quote(form.url)]))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "presign",
        parents=[common],
        help="a URL that lets anyone GET (or PUT) one object for a while",
        description="Print a presigned URL of the S3 HTTP API (SigV4 query authentication, "
        "signed with your access key, no call to the cluster): whoever holds it may do "
        "METHOD on the object, with no credentials of their own, until it expires. "
        "The URL's host is --s3-endpoint, default $AWS_ENDPOINT_URL (tristore dev up "
        "exports it).",
        epilog="examples:\n"
        "  tristore presign s3://photos/cat.jpg                 # GET, valid 1 hour\n"
        '  curl --cacert $AWS_CA_BUNDLE -o cat.jpg "$(tristore presign s3://photos/cat.jpg)"\n'
        "  tristore presign s3://inbox/upload.bin --method PUT --expires-in 600\n"
        "  tristore presign 's3://inbox/up/${filename}' --method POST --max-size 10MiB"
        "   # a form: curl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument(
        "--expires-in",
        metavar="SECONDS",
        default=str(DEFAULT_EXPIRES_S),
        help=f"seconds the URL is valid, 1 to 604800 (7 days; default {DEFAULT_EXPIRES_S})",
    )
    p.add_argument(
        "--method",
        type=str.upper,
        choices=METHODS,
        default="GET",
        help="what the URL may do: GET (default), PUT, HEAD or DELETE; POST: a browser "
        "upload form (a key ending in ${filename} takes the file's name), printed as the "
        "curl command that uploads FILE with it",
    )
    p.add_argument(
        "--field",
        action="append",
        metavar="NAME=VALUE",
        help="--method POST: a form field the upload must carry as given "
        "(Content-Type=..., acl=public-read, x-amz-meta-NAME=...); repeatable",
    )
    p.add_argument(
        "--max-size",
        metavar="SIZE",
        help="--method POST: the largest file the form takes (10MiB, 500KB, 4096)",
    )
    p.add_argument("--version-id", metavar="ID", help="this version of the object, not the newest")
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="the S3 API's base URL, https://HOST:PORT (default: $AWS_ENDPOINT_URL)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"schema": 1, "command": "presign", "url", "method", "bucket", "key", '
        '"version_id", "expires_in", "expires"} (--method POST: "fields" for "version_id")',
    )
    p.set_defaults(func=cmd_presign)
