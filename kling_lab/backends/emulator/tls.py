"""A throwaway certificate authority for the emulator's HTTPS, made once per process.

fal_client only speaks ``https://``, so the emulator needs a certificate the client
trusts. :func:`emulator_tls` issues one for 127.0.0.1/localhost from a trustme CA
and writes a CA bundle = the bundle already in use (``SSL_CERT_FILE`` or certifi's)
+ that CA, so pointing ``SSL_CERT_FILE`` at it keeps every other HTTPS host working.
"""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme

_LOCK = threading.Lock()
_TLS: EmulatorTLS | None = None


@dataclass(frozen=True)
class EmulatorTLS:
    """The combined CA bundle (for clients) and the server's SSL context."""

    ca_bundle: Path
    server_context: ssl.SSLContext


def emulator_tls() -> EmulatorTLS:
    """The process-wide emulator TLS material, created on first use."""
    global _TLS
    with _LOCK:
        if _TLS is None:
            _TLS = _create()
        return _TLS


def _create() -> EmulatorTLS:
    ca = trustme.CA(organization_name="kling_lab emulator")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    directory = Path(tempfile.mkdtemp(prefix="kling-lab-tls-"))  # mode 0700
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    base = Path(os.environ.get("SSL_CERT_FILE") or certifi.where())
    bundle = directory / "ca-bundle.pem"
    existing = base.read_bytes() if base.is_file() else b""
    bundle.write_bytes(existing.rstrip(b"\n") + b"\n" + ca.cert_pem.bytes())
    return EmulatorTLS(ca_bundle=bundle, server_context=context)
