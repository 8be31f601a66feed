"""One submit POST per submit call: fal-client's own retries of the submit are switched off.

fal-client retries a request itself (up to 10 times, 0.1 s · 2ⁿ apart, ignoring ``Retry-After``)
after a transport error, a 408/409/429 or an ingress 502/503/504. For the submit POST that is
wrong twice over: a 429's ``Retry-After`` is not honoured, and a POST whose *response* was lost
is sent again, creating a second paid job whose first id nobody ever sees.

:class:`SubmitGuard` wraps fal-client's HTTP transport. For a POST to the queue host it lets
exactly one attempt through and turns its failure into a :class:`SubmitAttemptFailed` — not an
``httpx.HTTPError``, so fal-client passes it straight up instead of retrying. The backend then
raises a :class:`~kling_lab.errors.BackendError` and kling_lab's own retry policy decides
(backoff honouring ``Retry-After``; every POST counted in ``attempts``). Each failure says
whether fal may have the job:

- ``refused``: fal answered with an error status (no job was created);
- ``not_sent``: the connection was never made (nothing reached fal);
- ``unanswered``: the request went out and no answer came back — fal may have created (and
  will bill) a job; the runner treats it as an *ambiguous submit* (:mod:`kling_lab.runner.orphans`).

Status, result and cancel calls (GETs and PUTs, safe to repeat) keep fal-client's retries.
"""

from __future__ import annotations

from typing import Literal

import httpx

Outcome = Literal["refused", "not_sent", "unanswered"]
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class SubmitAttemptFailed(Exception):
    """One submit POST failed; deliberately not an ``httpx.HTTPError`` (fal-client would retry it)."""

    def __init__(self, outcome: Outcome, *, response: httpx.Response | None = None, cause: BaseException | None = None):
        detail = f"HTTP {response.status_code}" if response is not None else f"{type(cause).__name__}: {cause}"
        super().__init__(f"submit {outcome}: {detail}")
        self.outcome = outcome
        self.response = response
        self.cause = cause


class SubmitGuard(httpx.AsyncBaseTransport):
    """An httpx transport around fal-client's own: submit POSTs to ``queue_host`` get one attempt."""

    def __init__(self, inner: httpx.AsyncBaseTransport, queue_host: str) -> None:
        self._inner = inner
        self._queue_host = queue_host
        self.submit_posts = 0  # POSTs sent (or tried) to the queue host

    def _is_submit(self, request: httpx.Request) -> bool:
        return request.method == "POST" and request.url.netloc.decode("ascii") == self._queue_host

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._is_submit(request):
            return await self._inner.handle_async_request(request)
        self.submit_posts += 1
        try:
            response = await self._inner.handle_async_request(request)
        except NOT_SENT as exc:
            raise SubmitAttemptFailed("not_sent", cause=exc) from exc
        except httpx.TransportError as exc:  # sent (at least in part), no answer: fal may have the job
            raise SubmitAttemptFailed("unanswered", cause=exc) from exc
        try:
            await response.aread()  # here, not in fal-client: a body cut short must not be re-sent
        except httpx.TransportError as exc:
            await response.aclose()
            raise SubmitAttemptFailed("unanswered", cause=exc) from exc
        if response.status_code >= 400:
            await response.aclose()
            raise SubmitAttemptFailed("refused", response=response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


__all__ = ["NOT_SENT", "SubmitAttemptFailed", "SubmitGuard"]
