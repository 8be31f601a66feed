"""The emulator's aiohttp application: fal's queue API over a :class:`JobQueue`, plus its own routes.

Routes (:meth:`EmulatorApp.routes` is the whole table):

- ``POST /{endpoint_id}`` per served endpoint: submit (401 without ``Authorization: Key …``,
  422 in fal's ``{"detail": [...]}`` shape for invalid input). Served: the endpoints given to the
  app, or (by default) every endpoint of every registered model, looked up when a request comes,
  so a model registered in a notebook is served at once;
- ``GET …/requests/{id}/status``, ``GET …/requests/{id}``, ``PUT …/requests/{id}/cancel`` under the
  job's endpoint's app prefix (``owner/alias``, what fal_client uses) or its full id; the judge
  endpoints (:mod:`~kling_lab.backends.emulator.judging`) are served the same way;
- fal storage (:mod:`~kling_lab.backends.emulator.storage`) and the platform pricing API
  (:mod:`~kling_lab.backends.emulator.pricing`);
- ``GET /_emulator/files/{id}/{name}``: a job's output files (the video URLs), with Range support;
- ``GET /v1/models/requests/by-endpoint``, ``GET /v1/models/usage``: fal's platform API
  (:mod:`~kling_lab.backends.emulator.platform`);
- ``GET /_emulator/stats``, ``GET|POST /_emulator/config``, ``POST /_emulator/reset``: control.

Every response carries ``X-Kling-Lab-Emulator: 1``. Every request's ``Authorization`` header is
counted and kept only as a SHA-256 digest (``stats()["authorization"]``).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.endpoints import ModelEndpoint, Workshop, app_prefix
from kling_lab.backends.emulator.faults import Faults
from kling_lab.backends.emulator.judging import judge_endpoint
from kling_lab.backends.emulator.platform import PlatformRoutes
from kling_lab.backends.emulator.pricing import PricingRoutes
from kling_lab.backends.emulator.queue import CANCELLED_MESSAGE, Job, JobQueue
from kling_lab.backends.emulator.responses import drop, json_response, truncated, validation_detail
from kling_lab.backends.emulator.storage import MAX_UPLOAD_BYTES, StorageRoutes
from kling_lab.backends.emulator.video import VideoEndpoint
from kling_lab.backends.fal import FINGERPRINT_HEADER, NO_FALLBACKS_HEADER
from kling_lab.models import model_for_endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JobHandler = Callable[[web.Request, Job], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 1024**2  # a JSON request (submit); storage uploads have their own, larger limit


class EmulatorApp:
    """Handlers and route table over a queue, a workshop and the served endpoints."""

    def __init__(
        self,
        queue: JobQueue,
        shop: Workshop,
        endpoints: Iterable[ModelEndpoint[Any]] | None,
        base_url: Callable[[], str],
    ) -> None:
        self.queue, self.shop = queue, shop
        self.fixed = endpoints is not None  # only the given endpoints, not the registry's
        self.endpoints = {endpoint.endpoint_id: endpoint for endpoint in endpoints or ()}
        self.faults = Faults(queue)
        self._base_url = base_url
        self.platform = PlatformRoutes(queue, self.endpoint, self._file_url)

    def endpoint(self, endpoint_id: str) -> ModelEndpoint[Any] | None:
        """The served endpoint with this id (a registered model's, made on first use), or None."""
        if endpoint_id in self.endpoints or self.fixed:
            return self.endpoints.get(endpoint_id)
        model = model_for_endpoint(endpoint_id)
        endpoint = model.endpoint_by_id(endpoint_id) if model is not None else None
        if model is None or endpoint is None:
            judge = judge_endpoint(endpoint_id)  # the vision-language endpoints judges use
            if judge is not None:
                self.endpoints[endpoint_id] = judge
            return judge
        served = self.endpoints[endpoint_id] = VideoEndpoint(model, endpoint)
        return served

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware()], client_max_size=MAX_UPLOAD_BYTES)
        app.on_response_prepare.append(_mark_emulator)
        app.router.add_routes(self.routes())
        return app

    def routes(self) -> list[web.RouteDef]:
        """The route table: the emulator's own, storage, pricing, then fal's queue API for any endpoint id."""
        base = "/{prefix:.+}/requests/{request_id}"
        storage = StorageRoutes(lambda: self.shop.storage, self.queue, self._authorized)
        return [
            web.get("/_emulator/files/{request_id}/{name}", self._file),
            web.get("/_emulator/stats", self._stats),
            web.get("/_emulator/config", self._get_config),
            web.post("/_emulator/config", self._post_config),
            web.post("/_emulator/reset", self._reset),
            *storage.routes(),
            *PricingRoutes(self.queue, self._authorized).routes(),
            *self.platform.routes(),  # before the request routes: /v1/models/requests/… is not a job
            web.get(f"{base}/status", self._on_job("status", self._status)),
            web.get(base, self._on_job("result", self._result)),
            web.put(f"{base}/cancel", self._on_job("cancel", self._cancel)),
            web.post("/{endpoint_id:.+}", self._submit_any),
        ]

    def _authorized(self, http: web.Request) -> bool:
        """A ``Key …`` the current config accepts (any, unless ``accepted_key_sha256`` names them)."""
        return _key_accepted(http, self.queue.config.accepted_key_sha256)

    # -- fal's queue API -----------------------------------------------------------------------
    async def _submit_any(self, http: web.Request) -> web.StreamResponse:
        endpoint = self.endpoint(http.match_info["endpoint_id"])
        if endpoint is None:
            return json_response({"detail": f"Not Found: POST {http.path}"}, 404)
        return await self._submit(http, endpoint)

    async def _submit(self, http: web.Request, endpoint: ModelEndpoint[Any]) -> web.StreamResponse:
        if not self._authorized(http):
            return _unauthorized()
        if len(await http.read()) > MAX_BODY_BYTES:
            return json_response({"detail": f"Request body larger than {MAX_BODY_BYTES} bytes"}, 413)
        try:
            body = await http.json()
        except ValueError:
            return json_response(
                {"detail": [{"loc": ["body"], "msg": "Invalid JSON body", "type": "json_invalid"}]}, 422
            )
        try:
            value = endpoint.parse(body)
        except ValidationError as exc:
            return json_response({"detail": validation_detail(exc)}, 422)
        self.queue.counters.calls["submit"] += 1
        input_hash = endpoint.input_hash(value)
        if (fault := self.faults.infra(http, "submit", input_hash)) is not None:
            await self.queue.answer_submit()  # a held answer may be an error too
            return fault

        async def work(job: Job) -> Any:
            return await endpoint.run(job, self.shop)

        job = self.queue.submit(
            endpoint.endpoint_id,
            value,
            work,
            input_hash=input_hash,
            cost_usd=endpoint.cost_usd(value),
            fingerprint=http.headers.get(FINGERPRINT_HEADER),
            notes=endpoint.notes,
            fallbacks_disabled=http.headers.get(NO_FALLBACKS_HEADER, "").lower() in ("1", "true", "yes"),
            raw_input=body,
        )
        await self.queue.answer_submit()  # a test may hold the answer: fal has the job, the client no id yet
        if self.faults.lost_submit(job):
            return drop(http)
        answer = {"request_id": job.request_id, **self._urls(job), "queue_position": self.queue.position(job)}
        return json_response(answer, 200, job.request_id)

    def _on_job(self, call: str, handle: JobHandler) -> Handler:
        """``handle`` behind the preamble every request route shares: key, counting, faults, 404."""

        async def handler(http: web.Request) -> web.StreamResponse:
            if not self._authorized(http):
                return _unauthorized()
            self.queue.counters.calls[call] += 1
            request_id = http.match_info["request_id"]
            job = self.queue.get(request_id)
            if job is not None and http.match_info["prefix"] not in (app_prefix(job.endpoint), job.endpoint):
                job = None  # the id exists, but under another app
            if (fault := self.faults.infra(http, call, job.key if job else request_id, request_id)) is not None:
                return fault
            if job is None:
                body = {"status": "NOT_FOUND"} if call == "cancel" else {"detail": f"Request {request_id} not found"}
                return json_response(body, 404, request_id)
            return await handle(http, job)

        return handler

    async def _status(self, http: web.Request, job: Job) -> web.StreamResponse:
        with_logs = http.query.get("logs", "").lower() in ("1", "true", "yes")
        logs = [dict(line) for line in job.logs] if with_logs else None
        body: dict[str, Any] = {"request_id": job.request_id, "response_url": self._urls(job)["response_url"]}
        if job.state == "queued":
            body.update(status="IN_QUEUE", queue_position=self.queue.position(job), logs=None)
        elif job.state == "in_progress":
            body.update(status="IN_PROGRESS", logs=logs)
        else:
            seconds = job.inference_time()
            metrics = {} if seconds is None else {"inference_time": round(seconds, 4)}
            error_type = job.error_type if self.queue.config.typed_completion_errors else None
            body.update(status="COMPLETED", logs=logs, metrics=metrics, error=job.error, error_type=error_type)
        return json_response(body, 200, job.request_id)

    async def _result(self, http: web.Request, job: Job) -> web.StreamResponse:
        request_id = job.request_id
        if not job.done:
            return json_response({"detail": "Request is still in progress"}, 400, request_id)
        if job.expired(self.queue.config.result_ttl_s):
            return json_response({"detail": "Request result expired"}, 410, request_id)
        if job.state == "cancelled":
            return json_response({"detail": CANCELLED_MESSAGE, "error_type": "request_cancelled"}, 400, request_id)
        endpoint = self.endpoint(job.endpoint)
        assert endpoint is not None
        if job.error_type == "content_policy_violation":
            detail = [{"loc": ["body", endpoint.policy_field], "msg": job.error, "type": "content_policy_violation"}]
            return json_response({"detail": detail}, 422, request_id, {"X-Fal-Error-Type": "content_policy_violation"})
        if job.state == "failed":
            return json_response({"detail": job.error, "error_type": job.error_type}, 500, request_id)
        return json_response(endpoint.output(job, self._file_url(job)), 200, request_id)

    def _file_url(self, job: Job) -> Callable[[str], str]:
        """Where a file of ``job`` is served (its output's URLs)."""
        base = f"{self._base_url()}/_emulator/files/{job.request_id}"
        return lambda name: f"{base}/{name}"

    async def _cancel(self, http: web.Request, job: Job) -> web.StreamResponse:
        if job.done:
            return json_response({"status": "ALREADY_COMPLETED"}, 400, job.request_id)
        self.queue.cancel(job)
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202, job.request_id)

    def _urls(self, job: Job) -> dict[str, str]:
        base = f"{self._base_url()}/{app_prefix(job.endpoint)}/requests/{job.request_id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    # -- output files ----------------------------------------------------------------------------
    async def _file(self, http: web.Request) -> web.StreamResponse:
        request_id, name = http.match_info["request_id"], http.match_info["name"]
        job = self.queue.get(request_id)
        path = job.files.get(name) if job is not None and job.state == "ok" else None
        if job is None or path is None:
            return json_response({"detail": "File not found"}, 404, request_id)
        if job.expired(self.queue.config.file_ttl_s):
            return json_response({"detail": "File expired"}, 410, request_id)
        headers = {"Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream"}
        if http.method == "HEAD":
            return web.FileResponse(path, headers=headers)
        downloads = self.queue.counters.downloads
        downloads[request_id] += 1
        if (fault := self.faults.infra(http, "download", job.key, request_id)) is not None:
            return fault
        headers["x-fal-request-id"] = request_id
        if self.faults.truncated_video(job, downloads[request_id] - 1):
            return await truncated(http, path, headers)
        return web.FileResponse(path, headers=headers)

    # -- control ---------------------------------------------------------------------------------
    async def _stats(self, http: web.Request) -> web.StreamResponse:
        return json_response(self.queue.stats(), 200)

    async def _get_config(self, http: web.Request) -> web.StreamResponse:
        return json_response(self.queue.config.model_dump(mode="json"), 200)

    async def _post_config(self, http: web.Request) -> web.StreamResponse:
        """Body: a JSON object of changes to the current config. Answers the new config."""
        config = await _config_from_body(http, self.queue.config)
        if isinstance(config, web.Response):
            return config
        return json_response(self.queue.configure(config).model_dump(mode="json"), 200)

    async def _reset(self, http: web.Request) -> web.StreamResponse:
        """Body (optional): a JSON object of config fields replacing the config (unset = defaults)."""
        config = await _config_from_body(http, EmulatorConfig()) if await http.read() else None
        if isinstance(config, web.Response):
            return config
        self.queue.reset(config)
        self.shop.storage.clear()
        return json_response(self.queue.stats(), 200)

    def _middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            """Count the Authorization header (as a digest); router errors (404, 405, 413) as fal-style JSON."""
            if (authorization := request.headers.get("Authorization")) is not None:
                self.queue.counters.record_authorization(authorization)
            try:
                return await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                return json_response({"detail": f"{exc.reason}: {request.method} {request.path}"}, exc.status)

        return middleware


def _key_accepted(http: web.Request, accepted_sha256: list[str] | None) -> bool:
    """fal's ``Authorization: Key …`` header is present and, when the config names the accepted
    keys (as digests), one of them (its value is never logged or kept)."""
    value = http.headers.get("Authorization", "")
    if not (value.startswith("Key ") and len(value) > len("Key ")):
        return False
    return accepted_sha256 is None or hashlib.sha256(value.encode("utf-8")).hexdigest() in accepted_sha256


def _unauthorized() -> web.Response:
    return json_response({"detail": "Missing or malformed Authorization header (expected 'Key <FAL_KEY>')"}, 401)


async def _config_from_body(http: web.Request, base: EmulatorConfig) -> EmulatorConfig | web.Response:
    """``base`` updated with the JSON object in the body, or a 422 response."""
    try:
        changes = await http.json()
        return EmulatorConfig.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        return json_response({"detail": validation_detail(exc)}, 422)
    except (ValueError, TypeError):
        return json_response({"detail": "expected a JSON object of EmulatorConfig fields"}, 422)


async def _mark_emulator(http: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Kling-Lab-Emulator"] = "1"
