"""Every S3 operation the HTTP API offers, one method each, grouped by what
they act on (node/s3/buckets.py, objects.py, post.py for browser form
uploads, multipart.py, cors.py, and configs.py for the bucket configurations
not offered): authorize
(node/guard.py, as the gRPC door does), call the Coordinator (as
node/servicer.py does), answer in S3's form.

Nothing here decides anything about objects: consistency, versioning,
replication and encryption are the Coordinator's, whichever door a request
came in by.
"""

from __future__ import annotations

from node.s3.buckets import BucketHandlers
from node.s3.call import Call
from node.s3.configs import ConfigHandlers
from node.s3.cors import CorsHandlers
from node.s3.multipart import MultipartHandlers
from node.s3.objects import ObjectHandlers
from node.s3.post import PostHandlers

__all__ = ["Call", "Handlers"]


class Handlers(
    BucketHandlers, ObjectHandlers, PostHandlers, MultipartHandlers, CorsHandlers, ConfigHandlers
):
    """The handlers node/s3/server.py routes to (by method name)."""
