"""The public surface is exactly what kling_lab.__all__ names, and importing it is cheap and safe."""

import subprocess
import sys

import kling_lab


def test_all_names_exist_and_are_public():
    for name in kling_lab.__all__:
        assert hasattr(kling_lab, name), name
    public = {n for n in dir(kling_lab) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(kling_lab, n)).__name__ == "module"}
    assert public - modules == set(kling_lab.__all__) - {"__version__"}


def test_import_does_not_import_fal_client_or_start_servers():
    # fal_client fixes its host at import: kling_lab must not import it before the emulator starts.
    code = "import sys, threading, kling_lab; print('fal_client' in sys.modules, threading.active_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "1"]
