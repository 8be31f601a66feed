"""The process-wide emulator: start it once, point fal_client at it through the environment.

fal_client fixes its queue host when it is first imported, so :func:`ensure_emulator`
must run before anything imports fal_client in this process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.server import EMULATOR_ENV, EmulatorServer
from kling_lab.errors import BackendConfigError

_LOCK = threading.Lock()
_SERVER: EmulatorServer | None = None


def ensure_emulator(config: EmulatorConfig | None = None) -> EmulatorServer:
    """The emulator of this process, started on a free loopback port on first call.

    The first call also sets ``FAL_QUEUE_RUN_HOST``, ``FAL_RUN_HOST``,
    ``SSL_CERT_FILE`` and ``KLING_LAB_EMULATOR``; later calls return the same server,
    applying ``config`` (if given) without dropping jobs or counters.
    """
    global _SERVER
    with _LOCK:
        if _SERVER is None:
            _check_fal_client(None)
            server = EmulatorServer(config).start()
            os.environ.update(server.env())
            atexit.register(server.stop)
            _SERVER = server
        elif config is not None:
            _SERVER.configure(**config.model_dump())
        _check_fal_client(_SERVER)
        return _SERVER


def external_emulator() -> str | None:
    """``host:port`` of an emulator named by ``KLING_LAB_EMULATOR`` that this process did not start.

    E.g. one started by a parent test process or by ``kling-lab emulator``; use it
    as is, trusting the ``SSL_CERT_FILE`` already in the environment.
    """
    value = os.environ.get(EMULATOR_ENV)
    if not value or (_SERVER is not None and value == _SERVER.host_port):
        return None
    return value


def _check_fal_client(server: EmulatorServer | None) -> None:
    """Raise if fal_client was imported with another queue host than ``server``'s."""
    client = sys.modules.get("fal_client.client")
    if client is None:
        return
    wanted = f"https://{server.host_port}/" if server is not None else None
    actual = getattr(client, "QUEUE_URL_FORMAT", None)
    if actual != wanted:
        raise BackendConfigError(
            f"fal_client was imported before the emulator was started, so it sends requests to "
            f"{actual!r} instead of the emulator{f' at {wanted!r}' if wanted else ''}. Restart the "
            "kernel/process and call kling_lab's emulator (or import kling_lab) before importing fal_client."
        )
