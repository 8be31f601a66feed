"""A local HTTPS stand-in for fal's queue API (Kling 2.0 Master text-to-video by default).

Start one with :func:`ensure_emulator` (process-wide, sets the environment so
fal_client uses it) or :class:`EmulatorServer` (explicit lifecycle).
"""

from kling_lab.backends.emulator.config import EmulatorConfig
from kling_lab.backends.emulator.render import render_placeholder
from kling_lab.backends.emulator.server import EmulatorServer
from kling_lab.backends.emulator.service import EMULATOR_ENV, ensure_emulator, external_emulator

__all__ = [
    "EMULATOR_ENV",
    "EmulatorConfig",
    "EmulatorServer",
    "ensure_emulator",
    "external_emulator",
    "render_placeholder",
]
