"""Pre-flight: before the first submit, reach the queue host (TCP connect + TLS handshake).

A backend that cannot be reached is a configuration problem, not a run of failures: without this,
every request of a sweep would retry for minutes and end as a ``failed`` row it never was. Nothing
is sent over the connection (no HTTP request, no key). The TLS context is the one httpx (and so
fal-client) builds, honouring ``SSL_CERT_FILE``; an untrusted certificate is final, not transient.

Where fal-client has a backup domain for the host (``queue.fal.run`` → ``queue.falrun.com``), the
backup is tried when the primary cannot be connected to, as fal-client would. Where an HTTPS proxy
applies (``HTTPS_PROXY``, ``NO_PROXY``), only the proxy is connected to: the TLS session to the
host goes through it, beyond a plain connection's reach.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import urllib.request
from urllib.parse import urlparse

from kling_lab.errors import BackendConfigError

PREFLIGHT_TIMEOUT_S = 10.0
HTTPS_PORT = 443


def split_host_port(host_port: str) -> tuple[str, int]:
    """``"queue.fal.run"`` → ``("queue.fal.run", 443)``; ``"[::1]:8443"`` → ``("::1", 8443)``."""
    parsed = urlparse(f"//{host_port}")
    try:
        port = parsed.port or HTTPS_PORT
    except ValueError:
        raise BackendConfigError(f"queue host {host_port!r} has an invalid port; nothing was submitted") from None
    if not parsed.hostname:
        raise BackendConfigError(f"queue host {host_port!r} has no host name; nothing was submitted")
    return parsed.hostname, port


def is_loopback_address(host: str) -> bool:
    """Is ``host`` (a name or an address in any form ``inet_aton`` takes) this machine itself?

    ``localhost`` and ``*.localhost`` (RFC 6761), all of 127.0.0.0/8, ``::1``, IPv4-mapped forms
    (``::ffff:127.0.0.2``), the unspecified addresses (0.0.0.0, ``::``, which reach this machine)
    and short forms such as ``127.1`` or ``2130706433``."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(name)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False  # a DNS name: see :func:`check_reachable` for what it resolves to
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _proxy_for(host: str) -> tuple[str, int] | None:
    """The HTTPS proxy httpx would use for ``host`` (from the environment), if any."""
    proxies = urllib.request.getproxies()
    url = proxies.get("https") or proxies.get("all")
    if not url or urllib.request.proxy_bypass(host):
        return None
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _connect(host: str, port: int, context: ssl.SSLContext | None, timeout_s: float) -> None:
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None),
        timeout_s,
    )
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass


def _explain(host: str, port: int, exc: BaseException, timeout_s: float) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of {where} is not trusted ({exc.verify_message or exc.reason}); check "
            "SSL_CERT_FILE, an intercepting proxy or the system clock"
        )
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake with {where} failed ({exc.reason or exc})"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host} ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout_s:g} s"
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        return f"cannot connect to {where} ({reason.lower()})"
    return f"cannot reach {where} ({type(exc).__name__}: {exc})"


async def check_reachable(
    host_port: str,
    *,
    allow_loopback: bool,
    backup_hosts: dict[str, str] | None = None,
    timeout_s: float = PREFLIGHT_TIMEOUT_S,
) -> None:
    """Connect to ``host_port`` and complete a TLS handshake, or raise :class:`BackendConfigError`.

    ``allow_loopback=False`` (the real fal backend) also refuses a host that resolves to this
    machine: the key must never reach a local server posing as fal."""
    host, port = split_host_port(host_port)
    proxy = _proxy_for(host)
    if not allow_loopback and proxy is None:
        try:
            addresses = await asyncio.wait_for(_resolve(host, port), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise BackendConfigError(f"{_explain(host, port, exc, timeout_s)}; nothing was submitted") from None
        local = [a for a in addresses if is_loopback_address(a)]
        if local:
            raise BackendConfigError(
                f"queue host {host} resolves to this machine ({local[0]}), not to fal; the key is not sent to "
                "a local server; nothing was submitted"
            )
    import httpx

    context = httpx.create_ssl_context()  # what fal-client's httpx client trusts
    candidates: list[tuple[tuple[str, int], ssl.SSLContext | None]] = (
        [(proxy, None)] if proxy is not None else [((host, port), context)]
    )
    backup = (backup_hosts or {}).get(host)
    if proxy is None and backup:
        candidates.append(((backup, port), context))
    first: BaseException | None = None
    for (name, number), ctx in candidates:
        try:
            await _connect(name, number, ctx, timeout_s)
            return
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError; fal-client tries the backup too
            first = first or exc
    assert first is not None
    name, number = candidates[0][0]
    raise BackendConfigError(f"{_explain(name, number, first, timeout_s)}; nothing was submitted") from None


__all__ = ["PREFLIGHT_TIMEOUT_S", "check_reachable", "is_loopback_address", "split_host_port"]
