"""Bucket configurations tristore does not offer (lifecycle, website, logging,
S3 event notifications, Object Lock, public access blocks, ownership
controls, transfer acceleration, Requester Pays): read, each answers as S3
answers a bucket that has none, after the same NoSuchBucket and
authorization checks as any bucket operation, so that a tool asking "is
there one?" learns "no" rather than failing; deleting one (lifecycle,
website) has nothing to delete and answers 204, as S3. Setting one stays
NotImplemented (node/s3/server.py :data:`UNOFFERED` names what is not offered).
"""

from __future__ import annotations

from aiohttp import web

from node.s3 import xml
from node.s3.call import Base, Call, answer, empty
from tristore import errors

#: Who pays for a bucket's requests and downloads: its owner (S3's default).
PAYER = "BucketOwner"


class ConfigHandlers(Base):
    """One method per read (or delete) of a configuration not offered."""

    async def _bucket(self, call: Call, operation: str) -> None:
        await self.allow(call, operation)
        await self.coord.head_bucket(call.bucket)

    async def get_bucket_lifecycle(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketLifecycleConfiguration")
        raise errors.NoSuchLifecycleConfiguration("The lifecycle configuration does not exist")

    async def delete_bucket_lifecycle(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "DeleteBucketLifecycle")
        return empty(204)

    async def get_bucket_website(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketWebsite")
        raise errors.NoSuchWebsiteConfiguration(
            "The specified bucket does not have a website configuration"
        )

    async def delete_bucket_website(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "DeleteBucketWebsite")
        return empty(204)

    async def get_bucket_logging(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketLogging")
        return answer(xml.empty_config("BucketLoggingStatus"))

    async def get_bucket_notification(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketNotificationConfiguration")
        return answer(xml.empty_config("NotificationConfiguration"))

    async def get_object_lock_configuration(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetObjectLockConfiguration")
        raise errors.ObjectLockConfigurationNotFoundError(
            "Object Lock configuration does not exist for this bucket"
        )

    async def get_public_access_block(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetPublicAccessBlock")
        raise errors.NoSuchPublicAccessBlockConfiguration(
            "The public access block configuration was not found"
        )

    async def get_bucket_ownership_controls(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketOwnershipControls")
        raise errors.OwnershipControlsNotFoundError("The bucket ownership controls were not found")

    async def get_bucket_accelerate(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketAccelerateConfiguration")
        return answer(xml.empty_config("AccelerateConfiguration"))

    async def get_bucket_request_payment(self, call: Call) -> web.StreamResponse:
        await self._bucket(call, "GetBucketRequestPayment")
        return answer(xml.request_payment(PAYER))
