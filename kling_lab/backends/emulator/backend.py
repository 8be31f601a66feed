"""The emulator backend: the same fal-client code path as ``fal``, pointed at the local emulator.

It never sends the user's FAL_KEY (a placeholder key is used), and every row it produces
says ``backend=emulator``.
"""

from __future__ import annotations

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.fal import FalBackend, fal_queue_host
from kling_lab.errors import BackendConfigError
from kling_lab.request import ENDPOINT

PLACEHOLDER_KEY = "kling-lab-emulator:not-a-real-key"


class EmulatorBackend(FalBackend):
    """fal_client.AsyncClient talking to the in-process (or an external) emulator."""

    name = "emulator"
    poll_interval_s = 0.1

    def __init__(
        self, config: EmulatorConfig | None = None, *, endpoint: str = ENDPOINT, timeout_s: float = 60.0
    ) -> None:
        from kling_lab.backends.emulator.service import ensure_emulator, external_emulator

        host = external_emulator()
        self.server = None
        if host is None:
            self.server = ensure_emulator(config)
            host = self.server.host_port
        elif config is not None:
            raise BackendConfigError("an external emulator is in use (KLING_LAB_EMULATOR); configure it there")
        actual = fal_queue_host()
        if actual != host:
            raise BackendConfigError(
                f"fal_client sends requests to {actual}, not to the emulator at {host}: it was imported "
                "before the emulator started. Restart the process/kernel and import kling_lab first."
            )
        import fal_client

        self.endpoint = endpoint
        self.host = host
        self._client = fal_client.AsyncClient(key=PLACEHOLDER_KEY, default_timeout=timeout_s)

    allow_loopback = True  # it is expected on loopback (and never gets the user's key)

    def _check_host(self) -> None:
        return None
