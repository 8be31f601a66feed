"""The emulator backend: the same fal-client code path as ``fal``, pointed at the local emulator.

It never sends the user's FAL_KEY (a placeholder key is used), and every row it produces
says ``backend=emulator``.
"""

from __future__ import annotations

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.fal import FalBackend, fal_client_for, fal_queue_host
from kling_lab.backends.platform import PlatformAPI
from kling_lab.errors import BackendConfigError

PLACEHOLDER_KEY = "kling-lab-emulator:not-a-real-key"


class EmulatorBackend(FalBackend):
    """fal_client.AsyncClient talking to the in-process (or an external) emulator."""

    name = "emulator"
    poll_interval_s = 0.1

    def __init__(self, config: EmulatorConfig | None = None, *, timeout_s: float = 60.0) -> None:
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
        point_storage_at(host)
        self.host = host
        self.storage_namespace = f"emulator-{host}"  # its uploads live as long as this emulator
        self._client = fal_client_for(PLACEHOLDER_KEY, timeout_s)
        self._platform_key = PLACEHOLDER_KEY

    def platform(self) -> PlatformAPI:
        """The emulator's own platform API (``/v1/models/...``), with the placeholder key."""
        return PlatformAPI(PLACEHOLDER_KEY, base_url=f"https://{self.host}/v1")

    allow_loopback = True  # it is expected on loopback (and never gets the user's key)

    def _check_host(self) -> None:
        return None


def point_storage_at(host: str) -> None:
    """Send fal_client's storage calls (``REST_URL``, ``CDN_URL``) to the emulator at ``host``.

    fal_client reads its queue host from the environment but has its storage hosts as module
    constants (``fal_client.client.REST_URL``, ``CDN_URL``, read at call time): pointing those at
    the emulator is the only way to test uploads offline. Only a loopback host is accepted, and
    the real fal backend refuses to start in a process whose fal_client points at loopback.
    """
    from fal_client import client as fal_client_module

    from kling_lab.backends.fal import is_loopback

    if not is_loopback(host):
        raise BackendConfigError(f"the emulator must be on loopback, not {host}")
    fal_client_module.REST_URL = f"https://{host}"
    fal_client_module.CDN_URL = f"https://{host}"
