"""Conditional writes on object storage: create-if-absent and compare-and-swap by ETag.

S3 (since August 2024) refuses a ``PutObject`` carrying ``If-None-Match: *`` when the key exists,
and a ``PutObject``/``DeleteObject`` carrying ``If-Match: <etag>`` when the object changed, with
``412 Precondition Failed``. That is enough for a lease that exactly one machine holds
(:mod:`kling_lab.runner.claims`). Some S3-compatible servers ignore the headers (both writers
then succeed), so :meth:`ConditionalObjects.supported` probes the store once before trusting them.
Other object stores (gs://, az://) are not covered here: claims stay per machine there.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kling_lab.store.files import LocalFiles, RemoteFiles

log = logging.getLogger("kling_lab.store")

_PROBED: dict[str, bool] = {}  # store location -> conditional writes work there


def _response(exc: BaseException) -> dict[str, Any] | None:
    """The S3 error response behind ``exc``: s3fs raises its own translation (a 412 on a replace or
    delete becomes ``OSError(EINVAL)``) with botocore's ``ClientError`` as the cause."""
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            return response
    return None


def _precondition_failed(exc: BaseException) -> bool:
    if isinstance(exc, FileExistsError):  # s3fs's translation of a 412 on a create
        return True
    response = _response(exc)
    if response is not None:
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)
    return False


class ConditionalObjects:
    """Create-if-absent, replace-if-unchanged and delete-if-unchanged on one S3 store."""

    def __init__(self, files: RemoteFiles) -> None:
        self.files = files
        self.fs: Any = files.fs

    @classmethod
    def for_store(cls, files: LocalFiles | RemoteFiles) -> ConditionalObjects | None:
        """The conditional-write layer of a store, or None where it does not apply or work."""
        if not isinstance(files, RemoteFiles) or files.protocol not in ("s3", "s3a"):
            return None
        objects = cls(files)
        return objects if objects.supported() else None

    def _split(self, key: str) -> tuple[str, str]:
        bucket, _, path = f"{self.files.base}/{key}".partition("/")
        return bucket, path

    def create(self, key: str, data: bytes) -> str | None:
        """Write ``key`` only if it does not exist; its ETag, or None when it already existed."""
        bucket, path = self._split(key)
        try:
            out = self.fs.call_s3("put_object", Bucket=bucket, Key=path, Body=data, IfNoneMatch="*")
        except Exception as exc:
            if _precondition_failed(exc):
                return None
            raise
        return str(out.get("ETag"))

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and an ETag no newer than them, or None when it does not exist.

        The ETag is read first: if the object changes before its bytes are read, a
        :meth:`replace` with that ETag fails, as it should."""
        path = f"{self.files.base}/{key}"
        try:
            etag = self.fs.info(path, refresh=True)["ETag"]
            data = self.fs.cat_file(path)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return bytes(data), str(etag)

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """Overwrite ``key`` only if it still has ``etag``; the new ETag, or None if it changed."""
        bucket, path = self._split(key)
        try:
            out = self.fs.call_s3("put_object", Bucket=bucket, Key=path, Body=data, IfMatch=etag)
        except Exception as exc:
            if _precondition_failed(exc) or _missing(exc):
                return None
            raise
        return str(out.get("ETag"))

    def delete(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``."""
        bucket, path = self._split(key)
        try:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=path, IfMatch=etag)
        except Exception as exc:
            if _precondition_failed(exc) or _missing(exc):
                return False
            raise
        return True

    def supported(self) -> bool:
        """Does this store refuse a second create of one key? Probed once per store and process."""
        location = self.files.location
        if location not in _PROBED:
            key = f"claims/.probe-{uuid.uuid4().hex}"
            try:
                first = self.create(key, b"1")
                second = self.create(key, b"2") if first is not None else None
                _PROBED[location] = first is not None and second is None
                self.files.delete(key)
            except Exception as exc:  # noqa: BLE001 - a server without the feature may answer anything
                log.debug("conditional-write probe of %s failed: %s", location, exc)
                _PROBED[location] = False
            if not _PROBED[location]:
                log.warning(
                    "%s does not honour conditional writes (If-None-Match): submit claims stay per machine",
                    location,
                )
        return _PROBED[location]


def _missing(exc: BaseException) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    response = _response(exc)
    if response is not None:
        return response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")
    return False


__all__ = ["ConditionalObjects"]
