"""The real fal backend: ``fal_client.AsyncClient`` behind our Backend protocol.

fal_client reads its hosts (``FAL_QUEUE_RUN_HOST``) when first imported, so it is imported
here lazily. Errors are translated to :class:`BackendError` with a transient flag.

Two things differ from a bare ``fal_client.AsyncClient``:

- its HTTP transport is wrapped in :class:`~kling_lab.backends.submit_guard.SubmitGuard`, so a
  submit POST is sent exactly once per :meth:`FalBackend.submit` (fal-client would re-send it
  itself, 0.1 s later, ignoring ``Retry-After`` and, after a lost response, creating a second paid
  job). kling_lab's retry policy decides instead; a submit that got no answer raises
  :class:`~kling_lab.errors.SubmitUnanswered`;
- every submit carries ``x-fal-disable-fallbacks: true``: fal's reliability docs say a request may
  otherwise be rerouted to an "equivalent" endpoint when the one asked for is unhealthy (on by
  default), which would silently mix models in an A/B study.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import httpx

from kling_lab.backends.base import Completed, InProgress, Queued, Status
from kling_lab.backends.platform import PlatformAPI
from kling_lab.backends.preflight import check_reachable, is_loopback_address
from kling_lab.backends.submit_guard import SubmitAttemptFailed, SubmitGuard
from kling_lab.errors import BackendConfigError, BackendError, SubmitUnanswered

FINGERPRINT_HEADER = "X-Kling-Lab-Fingerprint"
NO_FALLBACKS_HEADER = "x-fal-disable-fallbacks"  # fal's reliability docs: disables model fallbacks per request
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def fal_queue_host() -> str:
    """The host fal_client sends queue calls to (as fixed when fal_client was imported)."""
    from fal_client import client as fal_client_module

    return urlparse(fal_client_module.QUEUE_URL_FORMAT).netloc


def is_loopback(host_port: str) -> bool:
    """Does ``host:port`` name this machine (any loopback or unspecified address, ``localhost``)?"""
    host = urlparse(f"//{host_port}").hostname
    return host is not None and is_loopback_address(host)


@functools.cache
def _guarded_client_class() -> type:
    """``fal_client.AsyncClient`` whose httpx client has fal-client's own transport wrapped in a
    :class:`SubmitGuard` (same headers, timeout and backup domains as fal-client builds)."""
    import fal_client
    from asyncstdlib import cached_property as async_cached_property
    from fal_client import client as fal_client_module

    class GuardedAsyncClient(fal_client.AsyncClient):
        @async_cached_property(asyncio.Lock)
        async def _client(self) -> httpx.AsyncClient:
            auth = await self._auth
            inner = fal_client_module.AsyncBackupDomainTransport()
            return httpx.AsyncClient(
                transport=SubmitGuard(inner, fal_queue_host()),
                headers={"Authorization": auth.header_value, "User-Agent": fal_client_module.USER_AGENT},
                timeout=self.default_timeout,
            )

    return GuardedAsyncClient


def fal_client_for(key: str, timeout_s: float) -> Any:
    """A fal-client AsyncClient with the submit guard (see the module docstring)."""
    return _guarded_client_class()(key=key, default_timeout=timeout_s)


def fal_backup_hosts() -> dict[str, str]:
    """The backup domains fal-client falls back to on a connection error (e.g. queue.falrun.com)."""
    from fal_client import client as fal_client_module

    return dict(getattr(fal_client_module, "_BACKUP_DOMAINS", {}))


class FalBackend:
    """Talks to fal's queue with the real fal-client. Needs ``FAL_KEY``."""

    name = "fal"
    storage_namespace = "fal"
    poll_interval_s = 2.0
    disables_fallbacks = True  # every submit carries x-fal-disable-fallbacks (the row says so)

    def __init__(self, key: str | None = None, *, timeout_s: float = 120.0) -> None:
        key = key or os.environ.get("FAL_KEY")
        if not key:
            raise BackendConfigError(
                "the fal backend needs FAL_KEY in the environment (export FAL_KEY=...); nothing was submitted. "
                "Use --backend emulator (the default) to try a sweep for free."
            )
        self._check_host()
        self._client = fal_client_for(key, timeout_s)
        self._platform_key = key

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}()"

    def _check_host(self) -> None:
        host = fal_queue_host()
        if is_loopback(host):
            raise BackendConfigError(
                f"fal_client in this process points at {host}, a loopback address (the local emulator), "
                "not at fal; start a fresh process or kernel for the real fal backend; nothing was submitted"
            )

    allow_loopback = False  # the key never goes to this machine

    async def preflight(self) -> None:
        """Before the first submit: connect and complete a TLS handshake with the queue host
        (nothing is sent). Raises :class:`BackendConfigError` when it cannot be reached."""
        await check_reachable(fal_queue_host(), allow_loopback=self.allow_loopback, backup_hosts=fal_backup_hosts())

    def platform(self) -> PlatformAPI:
        """fal's platform API with this backend's key (request listing; usage with an Admin key)."""
        return PlatformAPI(self._platform_key)

    # -- the four queue calls, and storage -------------------------------------------------
    async def submit(self, endpoint: str, arguments: Mapping[str, Any], *, fingerprint: str | None = None) -> str:
        """Send the submit POST once (see :mod:`~kling_lab.backends.submit_guard`): a refusal raises
        a BackendError, a lost answer :class:`SubmitUnanswered`; kling_lab's retry policy decides."""
        headers = {NO_FALLBACKS_HEADER: "true"}
        if fingerprint:
            headers[FINGERPRINT_HEADER] = fingerprint
        try:
            handle = await self._client.submit(endpoint, arguments=dict(arguments), headers=headers)
        except SubmitAttemptFailed as exc:
            raise submit_error(exc) from exc
        except Exception as exc:
            raise translate_error(exc) from exc
        return handle.request_id

    async def status(self, endpoint: str, request_id: str) -> Status:
        try:
            raw = await self._client.status(endpoint, request_id, with_logs=True)
        except Exception as exc:
            raise translate_error(exc) from exc
        return _from_fal_status(raw)

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        try:
            return await self._client.result(endpoint, request_id)
        except Exception as exc:
            raise translate_error(exc) from exc

    async def cancel(self, endpoint: str, request_id: str) -> str:
        """Ask fal to cancel: "requested", or "completed" (too late: it finished and is billed),
        or "unknown" (fal does not know the id, e.g. expired)."""
        try:
            await self._client.cancel(endpoint, request_id)
        except Exception as exc:
            err = translate_error(exc)
            if err.status_code == 400:
                return "completed"
            if err.status_code == 404:
                return "unknown"
            raise err from exc
        return "requested"

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        """fal_client's own upload (fal's CDN, falling back to fal storage); returns the file's URL."""
        try:
            return await self._client.upload(data, content_type, file_name=file_name)
        except Exception as exc:
            err = translate_error(exc)
            err.error_type = "upload_error" if err.error_type == "client_error" else err.error_type
            raise err from exc

    async def aclose(self) -> None:
        """Close the httpx client fal_client created (it has no close() of its own)."""
        if "_client" in vars(self._client):  # created lazily on first use, cached per instance
            client = await self._client._client
            if isinstance(client, httpx.AsyncClient):
                await client.aclose()


def _from_fal_status(raw: Any) -> Status:
    from fal_client import Completed as FalCompleted
    from fal_client import InProgress as FalInProgress
    from fal_client import Queued as FalQueued

    if isinstance(raw, FalQueued):
        return Queued(position=raw.position)
    if isinstance(raw, FalInProgress):
        return InProgress(logs=raw.logs)
    if isinstance(raw, FalCompleted):
        return Completed(logs=raw.logs, metrics=raw.metrics or {}, error=raw.error, error_type=raw.error_type)
    raise BackendError(f"unknown status from fal: {raw!r}")


def _detail_message(detail: Any) -> tuple[str, str | None]:
    """fal's ``detail`` is a string or a list of {loc, msg, type}; return (message, type)."""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        msg = str(first.get("msg", ""))
        return (f"{loc}: {msg}" if loc else msg), first.get("type")
    return str(detail), None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_from_response(response: httpx.Response) -> BackendError:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else response.text
    message, detail_type = _detail_message(detail)
    error_type = (
        (body.get("error_type") if isinstance(body, dict) else None)
        or detail_type
        or response.headers.get("x-fal-error-type")
    )
    return BackendError(
        message or f"HTTP {response.status_code}",
        status_code=response.status_code,
        error_type=error_type or _default_type(response.status_code),
        transient=response.status_code in TRANSIENT_STATUS,
        retry_after_s=_retry_after(response.headers),
    )


def _default_type(status_code: int) -> str:
    return {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        410: "result_expired",
        422: "validation_error",
        429: "rate_limited",
    }.get(status_code, f"http_{status_code}")


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (httpx wraps it in a ConnectError), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def submit_error(exc: SubmitAttemptFailed) -> BackendError:
    """One failed submit POST as a BackendError (:class:`SubmitUnanswered` when fal may have the job)."""
    if exc.outcome == "refused" and exc.response is not None:
        return _error_from_response(exc.response)
    cause = exc.cause
    if exc.outcome == "unanswered":
        return SubmitUnanswered(f"submit sent but not answered ({type(cause).__name__}); fal may have the job")
    if cause is not None and (certificate := _certificate_error(cause)) is not None:
        return BackendError(
            f"TLS certificate not trusted: {certificate.verify_message or certificate.reason}",
            error_type="tls_certificate",
            transient=False,
        )
    return BackendError(
        f"connection problem (nothing was sent): {type(cause).__name__}: {cause}",
        error_type="connection_error",
        transient=True,
    )


def translate_error(exc: BaseException) -> BackendError:
    """Any exception from fal_client/httpx → BackendError (transient or not)."""
    from fal_client.client import FalClientHTTPError

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, FalClientHTTPError):
        return _error_from_response(exc.response)
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(f"timed out talking to fal: {type(exc).__name__}", error_type="timeout", transient=True)
    certificate = _certificate_error(exc)
    if certificate is not None:  # retrying cannot make a certificate trusted
        return BackendError(
            f"TLS certificate not trusted: {certificate.verify_message or certificate.reason}",
            error_type="tls_certificate",
            transient=False,
        )
    if isinstance(exc, httpx.TransportError):
        return BackendError(
            f"connection problem: {type(exc).__name__}: {exc}", error_type="connection_error", transient=True
        )
    return BackendError(f"{type(exc).__name__}: {exc}", error_type="client_error", transient=False)
