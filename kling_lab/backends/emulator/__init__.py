"""A local HTTPS stand-in for fal's queue API for Kling 2.0 Master text-to-video.

Start one with :func:`ensure_emulator` (process-wide, sets the environment so
fal_client uses it) or :class:`EmulatorServer` (explicit lifecycle).
"""

from .config import EmulatorConfig
from .render import render_placeholder
from .server import EmulatorServer
from .service import EMULATOR_ENV, ensure_emulator, external_emulator

__all__ = [
    "EMULATOR_ENV",
    "EmulatorConfig",
    "EmulatorServer",
    "ensure_emulator",
    "external_emulator",
    "render_placeholder",
]
