"""The real fal backend, holding the user's key, sent to the emulator: key-leak tests that can fail.

``FalBackend`` refuses a loopback host (so a key is never sent to a local server by mistake);
this subclass lifts only that guard, so a test can run the real code path with a real-looking
key in the process and check that the key shows up nowhere it should not.

``python tests/keyed_fal.py ARGS`` runs ``kling-lab ARGS`` with this backend as ``fal``.
"""

from __future__ import annotations

import sys

from kling_lab.backends.fal import FalBackend


class KeyedFalBackend(FalBackend):
    """``FalBackend`` (FAL_KEY and all) without the loopback guards: tests point it at the emulator."""

    allow_loopback = True  # the pre-flight's guard

    def _check_host(self) -> None:
        return None


if __name__ == "__main__":
    from kling_lab.backends import register_backend
    from kling_lab.cli import main

    register_backend("fal", lambda **options: KeyedFalBackend(**options))
    sys.exit(main(sys.argv[1:]))
