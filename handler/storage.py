"""Output delivery to an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, ... through an endpoint URL).

Why boto3 directly rather than the runpod SDK's rp_upload: rp_upload guesses the region from the endpoint's host
name (R2 needs "auto"), silently writes to a local folder when the bucket is not configured (the caller would get
a path on a dead worker instead of an error), fixes presigned URLs at 7 days, sets no Content-Type on in-memory
uploads, and calls logging.basicConfig on import. Here every one of those is explicit.

Configuration comes from config.BucketSettings (BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID,
BUCKET_SECRET_ACCESS_KEY, BUCKET_NAME, BUCKET_PREFIX, BUCKET_REGION, BUCKET_PRESIGN_TTL_S). Without an access key
pair boto3's default credential chain applies (an IAM role on AWS). Object keys are
`<prefix>/<job id>/<file name>`; the caller gets a presigned GET URL valid for BUCKET_PRESIGN_TTL_S seconds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Optional

from handler.config import BucketSettings
from handler.errors import ConfigError, WorkerError

log = logging.getLogger(__name__)

MAX_PRESIGN_TTL_S = 7 * 24 * 3600  # the SigV4 ceiling
_KEY_PART_BAD = re.compile(r"[^A-Za-z0-9._()-]+")


class BucketUploadError(WorkerError):
    """The bucket refused or could not be reached; the outputs were not delivered."""

    code = "bucket_upload_failed"


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    url: str
    size: int
    content_type: str


def _key_part(text: str, fallback: str) -> str:
    """A safe single path segment for an object key (job ids and ComfyUI file names are mostly safe already)."""
    cleaned = _KEY_PART_BAD.sub("_", text).strip("._")
    return cleaned[:200] or fallback


def _region(settings: BucketSettings) -> str:
    if settings.region:
        return settings.region
    endpoint = (settings.endpoint_url or "").lower()
    if "r2.cloudflarestorage.com" in endpoint:
        return "auto"
    return "us-east-1"


class BucketStore:
    """Uploads bytes and hands back presigned URLs. One per worker; boto3 clients are thread-safe."""

    def __init__(self, settings: BucketSettings, client: Any = None,
                 connect_timeout_s: float = 10.0, read_timeout_s: float = 60.0):
        if not settings.configured:
            raise ConfigError("BUCKET_NAME is not set: bucket upload is not configured.")
        if settings.presign_ttl_s > MAX_PRESIGN_TTL_S:
            raise ConfigError(
                f"BUCKET_PRESIGN_TTL_S={settings.presign_ttl_s} is invalid: presigned URLs last at most "
                f"{MAX_PRESIGN_TTL_S} s (7 days)."
            )
        if bool(settings.access_key_id) != bool(settings.secret_access_key):
            raise ConfigError("BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY must be set together.")
        self.settings = settings
        self.bucket = settings.name
        if client is None:
            # boto3 is imported here, not at module level: only workers with a bucket pay its ~0.5 s import at start.
            import boto3
            from botocore.config import Config

            config = Config(
                signature_version="s3v4",
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                retries={"max_attempts": 3, "mode": "standard"},
                # Custom endpoints (MinIO, R2, ...) are addressed path-style: it needs no wildcard DNS.
                s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            )
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.endpoint_url,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                region_name=_region(settings),
                config=config,
            )
        self.client = client

    def key_for(self, job_id: str, filename: str) -> str:
        parts = [p for p in self.settings.prefix.strip("/").split("/") if p] if self.settings.prefix else []
        parts += [_key_part(job_id, "job"), _key_part(filename, "output")]
        return "/".join(parts)

    def upload(self, data: bytes, *, job_id: str, filename: str, content_type: str) -> StoredObject:
        """Put `data` at <prefix>/<job_id>/<filename> and return it with a presigned GET URL."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_for(job_id, filename)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.settings.presign_ttl_s,
            )
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise BucketUploadError(
                f"Uploading the output '{filename}' to bucket '{self.bucket}' failed: "
                f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ") + ".",
                {"bucket": self.bucket, "key": key, "code": err.get("Code")},
            ) from None
        except BotoCoreError as exc:
            raise BucketUploadError(
                f"Uploading the output '{filename}' to bucket '{self.bucket}' failed: {exc}.",
                {"bucket": self.bucket, "key": key},
            ) from None
        log.info("uploaded %s (%d bytes, %s) to s3://%s/%s", filename, len(data), content_type, self.bucket, key)
        return StoredObject(bucket=self.bucket, key=key, url=url, size=len(data), content_type=content_type)

    def check(self) -> Optional[str]:
        """Whether the bucket is reachable with these credentials (for start-up logs / the info action).
        Returns None when fine, else a one-line reason. Never raises."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            return f"bucket '{self.bucket}': {err.get('Code', 'error')} {err.get('Message', '')}".strip()
        except BotoCoreError as exc:
            return f"bucket '{self.bucket}': {exc}"


def bucket_store(settings: BucketSettings) -> Optional[BucketStore]:
    """A BucketStore when BUCKET_NAME is set, else None (outputs are returned inline)."""
    return BucketStore(settings) if settings.configured else None
