"""The fal storage upload cache: which file (by sha256) is already in whose fal storage, at what URL.

A dataset of the store (``uploads/part-….parquet``, one small file per upload), so everyone sharing
the store shares it: a picture uploaded once is never uploaded again, across requests, re-runs and
team members. Entries are per *namespace* (``fal``, or ``emulator-<host:port>`` whose files live as
long as that emulator) and expire after ``max_age_s`` (fal keeps uploaded media for days, not
forever: an older entry is uploaded again). Image-to-video inputs use it; so can any feature that
sends a file to fal (e.g. a judge sending a video).
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from kling_lab.store.run_store import RunStore
from kling_lab.util.clock import utcnow

DATASET = "uploads"
MAX_AGE_S = 6 * 24 * 3600.0  # fal keeps uploaded media at least 7 days (its FAQ, read late 2026)
UPLOAD_SCHEMA = pa.schema(
    [
        pa.field("sha256", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("url", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("content_type", pa.string()),
        pa.field("file_name", pa.string()),
        pa.field("uploaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


class UploadCache:
    """sha256 → URL per namespace, read from the store once and kept up to date in memory."""

    def __init__(self, store: RunStore, *, max_age_s: float = MAX_AGE_S) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self._known: dict[tuple[str, str], tuple[str, object]] | None = None

    def _load(self) -> dict[tuple[str, str], tuple[str, object]]:
        if self._known is None:
            self._known = {}
            table = self.store.read_dataset(DATASET, UPLOAD_SCHEMA)
            for row in sorted(table.to_pylist(), key=lambda r: r["uploaded_at"]):
                self._known[(row["namespace"], row["sha256"])] = (row["url"], row["uploaded_at"])
        return self._known

    def url(self, namespace: str, sha256: str) -> str | None:
        """The URL of a live earlier upload of this content to this namespace, or None."""
        entry = self._load().get((namespace, sha256))
        if entry is None:
            return None
        url, uploaded_at = entry
        if uploaded_at is not None and utcnow() - uploaded_at > timedelta(seconds=self.max_age_s):  # type: ignore[operator]
            return None
        return url

    def record(self, *, namespace: str, sha256: str, url: str, size: int, content_type: str, file_name: str) -> None:
        """Remember an upload (one new part file of the ``uploads`` dataset)."""
        now = utcnow()
        row = {
            "sha256": sha256,
            "namespace": namespace,
            "url": url,
            "bytes": size,
            "content_type": content_type,
            "file_name": file_name,
            "uploaded_at": now,
        }
        self.store.append_table(DATASET, pa.Table.from_pylist([row], schema=UPLOAD_SCHEMA), "upload")
        self._load()[(namespace, sha256)] = (url, now)

    def refresh(self) -> None:
        """Forget what was read (another process may have uploaded since)."""
        self._known = None


__all__ = ["DATASET", "MAX_AGE_S", "UPLOAD_SCHEMA", "UploadCache"]
