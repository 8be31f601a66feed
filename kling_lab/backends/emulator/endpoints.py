"""What a model endpoint of the emulator is, and the workshop its work runs in.

A :class:`ModelEndpoint` is everything the HTTP app needs to serve one fal endpoint id: its
input schema (a pydantic model), its price rule, its *work* (a coroutine producing the
result, run by the queue model) and the shape of its result body. Serving another model is
one subclass more in the list given to ``EmulatorServer(endpoints=...)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.faults import Faults
from kling_lab.backends.emulator.queue import Job, JobQueue
from kling_lab.backends.emulator.storage import Storage
from kling_lab.util.text import canonical_json

InputT = TypeVar("InputT", bound=BaseModel)
APP_NAMESPACES = ("workflows", "comfy")  # as fal_client's AppId parses them
FileUrl = Callable[[str], str]  # a job's file name -> the URL the emulator serves it at


def app_prefix(endpoint_id: str) -> str:
    """The app part of an endpoint id (``owner/alias``), where fal_client sends status/result/cancel."""
    parts = endpoint_id.split("/")
    size = 3 if parts[0] in APP_NAMESPACES else 2
    return "/".join(parts[:size])


class ModelEndpoint(ABC, Generic[InputT]):
    """One fal endpoint the emulator serves."""

    endpoint_id: str
    input_model: type[InputT]
    notes: tuple[str, ...] = ()  # first log lines of every job
    policy_field: ClassVar[str] = "prompt"  # the input field a content-policy refusal points at

    @property
    def app_prefix(self) -> str:
        return app_prefix(self.endpoint_id)

    def parse(self, body: Any) -> InputT:
        """The validated input (raises pydantic's ValidationError: a 422)."""
        return self.input_model.model_validate(body)

    def arguments(self, value: InputT) -> dict[str, Any]:
        """The input as fal receives it; its canonical JSON is the job's input hash."""
        return value.model_dump(mode="json")

    def input_hash(self, value: InputT) -> str:
        """sha256 of the canonical JSON of :meth:`arguments` (the key of ``submissions_by_input``)."""
        return hashlib.sha256(canonical_json(self.arguments(value)).encode("utf-8")).hexdigest()

    @abstractmethod
    def cost_usd(self, value: InputT) -> float:
        """What fal bills for this input when it completes ok."""

    @abstractmethod
    async def run(self, job: Job, shop: Workshop) -> Any:
        """The job's work: produce its result (raise JobFailed for a model error)."""

    @abstractmethod
    def output(self, job: Job, file_url: FileUrl) -> dict[str, Any]:
        """The body of ``GET …/requests/{id}`` for a job that completed ok."""


@dataclass(frozen=True)
class Rendered:
    """What the emulator drew into a placeholder clip, kept in the file's ``comment`` metadata tag
    (the judge endpoints score from it, whichever emulator made the clip)."""

    prompt: str
    negative_prompt: str
    cfg_scale: float
    duration_s: float
    model: str

    TAG: ClassVar[str] = "kling_lab_emulator"

    def comment(self) -> str:
        return json.dumps({self.TAG: dataclasses.asdict(self)}, ensure_ascii=False)

    @classmethod
    def read(cls, path: Path) -> Rendered | None:
        """What the clip at ``path`` shows, if this emulator (any instance) rendered it."""
        import av

        try:
            with av.open(str(path)) as container:
                comment = container.metadata.get("comment", "")
            facts = json.loads(comment)[cls.TAG]
            return cls(**{f.name: facts[f.name] for f in dataclasses.fields(cls)})
        except Exception:  # noqa: BLE001 - not an emulator clip (or not a video): nothing known
            return None


class Workshop:
    """Where work runs: a thread pool sized to the concurrency, a directory for output files, the
    live config, and the emulated fal storage (uploaded inputs)."""

    def __init__(self, queue: JobQueue, base_url: Callable[[], str] = lambda: "") -> None:
        self._queue = queue
        self._base_url = base_url
        self.faults = Faults(queue)
        self.files = Path(tempfile.mkdtemp(prefix="kling-lab-emulator-"))
        self.storage = Storage(self.files / "uploads", base_url)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_workers = 0

    def local_file(self, url: str) -> Path | None:
        """The file behind one of this emulator's URLs: an upload to its storage or a job's output."""
        stored = self.storage.find(url)
        if stored is not None:
            return stored.path
        prefix = f"{self._base_url()}/_emulator/files/"
        if not isinstance(url, str) or not url.startswith(prefix):
            return None
        request_id, _, name = url[len(prefix) :].partition("/")
        job = self._queue.get(request_id)
        return job.files.get(name) if job is not None and job.state == "ok" else None

    @property
    def config(self) -> EmulatorConfig:
        return self._queue.config

    def make_file(self, job: Job, name: str, write: Callable[[Path], object]) -> asyncio.Future[Path]:
        """Run ``write(path)`` in the pool, publishing the file atomically as one of ``job``'s files.

        A half-written file is never served; a cancelled job's file is deleted when the thread ends.
        """
        path = self.files / name
        future = self._pool_now().submit(_write_atomically, write, path)
        wrapped = asyncio.wrap_future(future)

        def settle(done: asyncio.Future[Path]) -> None:
            if done.cancelled():  # the thread cannot be stopped: delete its file when it ends
                future.add_done_callback(lambda _: path.unlink(missing_ok=True))
            elif done.exception() is None:
                job.files[name] = path

        wrapped.add_done_callback(settle)
        return wrapped

    def close(self) -> None:
        """Stop the pool (renders still running end on their own) and delete every file."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        shutil.rmtree(self.files, ignore_errors=True)

    def _pool_now(self) -> concurrent.futures.ThreadPoolExecutor:
        """The pool, resized when the configured concurrency changed (running renders finish on the old one)."""
        workers = max(1, min(self.config.concurrency, os.cpu_count() or 1))
        if self._pool is None or self._pool_workers != workers:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="kling-lab-render")
            self._pool_workers = workers
        return self._pool


def _write_atomically(write: Callable[[Path], object], path: Path) -> Path:
    """Write to a temporary name, then rename."""
    partial_path = path.with_name(f".{path.name}.part")
    write(partial_path)
    os.replace(partial_path, path)
    return path
