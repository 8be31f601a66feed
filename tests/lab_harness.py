"""A real JupyterLab for the browser tests: a ``jupyter lab`` server on loopback with a token, and
helpers that drive it in headless Chromium (open a notebook, run its cells, wait for outputs).

The server inherits the test process's environment, so its kernels use the session's emulator
(``KLING_LAB_EMULATOR`` + its CA bundle) and this checkout's kling_lab. Its runtime and config
directories are private (other Jupyter servers on the machine are not seen, and not disturbed).
Every wait is for a condition, with generous timeouts for a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A running ``jupyter lab`` whose root is ``root``."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.token, self.port = root, secrets.token_hex(16), _free_port()
        runtime, config = home / "runtime", home / "config"
        runtime.mkdir(parents=True, exist_ok=True)
        config.mkdir(parents=True, exist_ok=True)
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        notebook = home / "settings" / "@jupyterlab" / "notebook-extension"
        notebook.mkdir(parents=True, exist_ok=True)
        (notebook / "tracker.jupyterlab-settings").write_text('{"autoStartDefaultKernel": true}')
        self.env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "PYTHONUNBUFFERED": "1",
        }
        self.log = open(home / "lab.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--ServerApp.disable_check_xsrf=False",
            ],
            cwd=root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}: see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {START_TIMEOUT_S} s: see {self.log.name}")

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/{path}?token={self.token}", timeout=10) as r:
            return json.loads(r.read())

    def wait_kernel_connected(self, relpath: str, timeout_s: float = 120.0) -> None:
        """Wait until the notebook's kernel is idle with the page's websocket connected (server's view)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for session in self.api("sessions"):
                kernel = session.get("kernel") or {}
                connected = session.get("path") == relpath and kernel.get("connections", 0) >= 1
                if connected and kernel.get("execution_state") == "idle":
                    return
            time.sleep(0.3)
        raise TimeoutError(f"no connected idle kernel for {relpath} within {timeout_s} s")

    def stop(self) -> None:
        for session in self.api("sessions"):  # shut kernels down cleanly before the server
            req = urllib.request.Request(f"{self.url}/api/sessions/{session['id']}?token={self.token}", method="DELETE")
            try:
                urllib.request.urlopen(req, timeout=10).close()
            except OSError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells (its outputs are made by running it in the browser)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def open_notebook(page: Any, lab: Lab, relpath: str) -> None:
    """Open ``relpath`` (relative to the lab's root) and wait until its kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{relpath}?reset&token={lab.token}", timeout=120_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    lab.wait_kernel_connected(relpath)
    wait_idle(page)


def wait_idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait until the notebook's kernel status says idle."""
    page.wait_for_function(
        """() => { const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
                   const k = document.querySelector('[data-status]');
                   return s && k && k.getAttribute('data-status') === 'idle'; }""",
        timeout=timeout_ms,
    )


def run_all(page: Any, count: int, timeout_ms: int = 180_000) -> None:
    """Run > Run All Cells, then wait until the ``count`` cells have execution counts and the kernel is idle."""
    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    errors = ".jp-NotebookPanel:not(.lm-mod-hidden) [data-mime-type='application/vnd.jupyter.stderr']"
    page.wait_for_function(
        """([n, errors]) => { const p = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputArea-prompt')];
                 return document.querySelector(errors) || (p.length >= n && p.slice(0, n).every(e => /\\[\\d+\\]/.test(e.textContent))); }""",
        arg=[count, errors],
        timeout=timeout_ms,
    )
    tracebacks = [t for t in page.locator(errors).all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, "a cell failed:\n" + "\n".join(tracebacks)
    page.wait_for_function(
        """n => { const p = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputArea-prompt')];
                 return p.length >= n && p.slice(0, n).every(e => /\\[\\d+\\]/.test(e.textContent)); }""",
        arg=count,
        timeout=timeout_ms,
    )
    wait_idle(page, timeout_ms)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
