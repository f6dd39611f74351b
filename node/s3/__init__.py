"""The S3 HTTP API (DESIGN.md §9): a second door to the same object operations.

- node/s3/server.py — the aiohttp server, addressing, routing, S3's XML errors, metrics;
- node/s3/auth.py — SigV4 over HTTP (header, presigned, aws-chunked seed, POST forms);
- node/s3/body.py — streamed request bodies: aws-chunked, digests, checksums;
- node/s3/headers.py — HTTP headers to and from the domain's dataclasses;
- node/s3/call.py — one request being handled, and what every handler shares;
- node/s3/buckets.py, objects.py, multipart.py — one method per S3 operation:
  authorize (node/guard.py), call the Coordinator (as node/servicer.py does),
  answer; node/s3/handlers.py puts them together;
- node/s3/post.py, post_policy.py — POST Object (browser form uploads) and
  the policy its form is checked against;
- node/s3/xml.py — S3's XML documents.
"""
