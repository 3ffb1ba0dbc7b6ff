"""Logs kept in S3 (or an S3-compatible store: MinIO, Ceph, R2, GCS's XML API) through boto3.

Objects are ``<prefix>/<platform>/<project>/<run>/<attempt>/<job>/<name>.log.gz`` (fields
percent-encoded), gzip-compressed while they upload, with the SHA-256 and size of the original
bytes in the object's metadata. The SHA-256 must be known when the upload starts, so ``put`` reads
the source twice: once to hash it, once to compress and upload it, hashing again to catch a
source that changed in between. Uploads go through boto3's managed transfer (multipart above
8 MiB), so memory stays bounded by the part size times the transfer's concurrency.
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from cimedic.archive.base import (
    COMPRESS_LEVEL,
    FIELDS,
    ArchivedLog,
    ArchiveError,
    ArchiveKey,
    LogInput,
    Prefix,
    check_prefix,
    digest,
    encode_part,
    key_from_parts,
    open_input,
    read_chunks,
)

SUFFIX = ".log.gz"
KEY_MAX = 1024  # S3's limit on an object key, in UTF-8 bytes
PART = 8 * 1024 * 1024
PART_MIN = 5 * 1024 * 1024  # S3 refuses smaller parts (except the last)
CONCURRENCY = 4
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Archive:
    """gzip-compressed logs in ``bucket`` under ``prefix``; ``client`` is a boto3 S3 client."""

    def __init__(self, bucket: str, prefix: str, client: Any, *, part_size: int = PART) -> None:
        if part_size < PART_MIN:
            raise ArchiveError(f"s3://{bucket}", f"part size {part_size} is below S3's minimum of {PART_MIN} bytes")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.part_size = part_size

    def object_key(self, key: ArchiveKey) -> str:
        name = "/".join(encode_part(p) for p in key.parts()) + SUFFIX
        full = f"{self.prefix}/{name}" if self.prefix else name
        if len(full) > KEY_MAX:
            raise ArchiveError(str(key), f"object key is {len(full)} bytes, S3 allows {KEY_MAX}")
        return full

    def uri(self, key: ArchiveKey) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def put(self, key: ArchiveKey, source: LogInput) -> ArchivedLog:
        from boto3.s3.transfer import TransferConfig

        uri = self.uri(key)
        first = digest(source, uri)
        metadata = {"sha256": first.sha256, "original-size": str(first.size), "format": "gzip"}
        with open_input(source, uri) as src:
            stream = _Compressing(src, uri)
            config = TransferConfig(
                multipart_threshold=self.part_size, multipart_chunksize=self.part_size, max_concurrency=CONCURRENCY
            )
            extra = {"Metadata": metadata, "ContentType": "application/gzip"}
            with _errors(uri):
                self.client.upload_fileobj(stream, self.bucket, self.object_key(key), ExtraArgs=extra, Config=config)
        if (stream.sha.hexdigest(), stream.size) != (first.sha256, first.size):
            self.delete(key)
            raise ArchiveError(uri, "the log changed while it was archived; archive it again once it is complete")
        return ArchivedLog(key, uri, first.size, stream.compressed, first.sha256)

    def open(self, key: ArchiveKey) -> BinaryIO:
        uri = self.uri(key)
        with _errors(uri):
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        return cast(BinaryIO, _GzipBody(body))

    def _head(self, key: ArchiveKey) -> dict[str, Any]:
        with _errors(self.uri(key)):
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.object_key(key)))

    def info(self, key: ArchiveKey) -> ArchivedLog:
        uri = self.uri(key)
        head = self._head(key)
        meta = head.get("Metadata", {})
        try:
            size = int(meta.get("original-size", ""))
        except ValueError:
            raise ArchiveError(uri, "object has no original-size metadata; it was not stored by cimedic") from None
        return ArchivedLog(key, uri, size, int(head.get("ContentLength", 0)), str(meta.get("sha256", "")))

    def exists(self, key: ArchiveKey) -> bool:
        try:
            self._head(key)
        except ArchiveError as exc:
            if exc.problem.startswith("not in the archive"):
                return False
            raise
        return True

    def delete(self, key: ArchiveKey) -> None:
        uri = self.uri(key)
        with _errors(uri):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def list(self, prefix: Prefix = ()) -> Iterator[ArchiveKey]:
        check_prefix(prefix)
        parts = [encode_part(p) for p in prefix]
        base = f"{self.prefix}/" if self.prefix else ""
        # A trailing "/" keeps project "org/a" from matching "org/ab"; a whole key is one object.
        search = base + "/".join(parts) + (SUFFIX if len(parts) == len(FIELDS) else "/" if parts else "")
        found: builtins.list[ArchiveKey] = []
        with _errors(f"s3://{self.bucket}/{search}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=search):
                for obj in page.get("Contents", []):
                    name = str(obj["Key"])[len(base) :]
                    if name.endswith(SUFFIX):
                        key = key_from_parts(name[: -len(SUFFIX)].split("/"))
                        if key is not None:
                            found.append(key)
        yield from sorted(found)


def s3_client(region: str | None, endpoint_url: str | None, *, retries: int = 5, timeout_s: float = 30.0) -> Any:
    """A boto3 S3 client; credentials come from boto3's usual chain (profile, role, environment)."""
    try:
        import boto3
    except ModuleNotFoundError as exc:
        raise ArchiveError("s3", "the S3 archive needs boto3: pip install 'cimedic[aws]'") from exc
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": retries + 1},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        # Self-hosted S3 (MinIO, Ceph) rarely has wildcard DNS for virtual-host buckets.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session(region_name=region).client("s3", endpoint_url=endpoint_url, config=config)


class _Compressing(io.RawIOBase):
    """A readable stream of the gzip-compressed bytes of ``src``, produced as it is read."""

    def __init__(self, src: BinaryIO, subject: str) -> None:
        self._chunks = read_chunks(src, subject)
        # wbits 31: a gzip header and trailer, so the object is a plain .gz file.
        self._zip = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)
        self._buf = bytearray()
        self._done = False
        self.sha = hashlib.sha256()
        self.size = 0
        self.compressed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        while len(self._buf) < len(view) and not self._done:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._buf += self._zip.flush()
                self._done = True
            else:
                self.sha.update(chunk)
                self.size += len(chunk)
                self._buf += self._zip.compress(chunk)
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        del self._buf[:n]
        self.compressed += n
        return n


class _GzipBody(gzip.GzipFile):
    """Decompresses an S3 response body as it is read, and closes the connection with it."""

    def __init__(self, body: Any) -> None:
        super().__init__(fileobj=body, mode="rb")
        self._body = body

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._body.close()


@contextlib.contextmanager
def _errors(subject: str) -> Iterator[None]:
    """Turns boto3 failures into one-line ArchiveErrors that say what to check."""
    try:
        yield
    except ArchiveError:
        raise
    except Exception as exc:
        problem = s3_problem(exc)
        if problem is None:
            raise
        raise ArchiveError(subject, problem) from exc


def s3_problem(exc: BaseException) -> str | None:
    """What a botocore failure means, in one line; None for exceptions that are not botocore's."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING:
            return "not in the archive"
        if code == "NoSuchBucket":
            return "the bucket does not exist"
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"access refused ({code}): the credentials need s3:GetObject, PutObject, ListBucket, DeleteObject"
        message = " ".join(str(error.get("Message", "")).split())[:200]
        return f"S3 answered {code or 'an error'}: {message or 'no details'}"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure a profile, an instance role, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach S3 ({exc})"
    if isinstance(exc, BotoCoreError):
        return " ".join(str(exc).split())[:200]
    return None
