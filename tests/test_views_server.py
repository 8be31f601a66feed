"""The loopback media server: registered files only, HTTP Range for scrubbing."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from kling_lab.views.video_server import MediaServer


@pytest.fixture
def server():
    srv = MediaServer()
    yield srv
    srv.stop()


def get(url: str, **headers: str):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)


def test_serves_a_registered_file_with_ranges(server, tmp_path):
    data = bytes(range(256)) * 40
    path = tmp_path / "clip one.mp4"
    path.write_bytes(data)
    url = server.url(path)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/clip%20one.mp4")
    assert server.url(path) == url  # one key per file
    with get(url) as whole:
        assert whole.status == 200 and whole.read() == data
        assert whole.headers["Content-Type"] == "video/mp4" and whole.headers["Accept-Ranges"] == "bytes"
    with get(url, Range="bytes=100-199") as part:
        assert part.status == 206 and part.read() == data[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"


def test_only_registered_files_are_served(server, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_bytes(b"no")
    url = server.url(tmp_path / "a.mp4")
    base = url.rsplit("/f/", 1)[0]
    for probe in (f"{base}/f/guess/secret.txt", f"{base}/secret.txt", url.replace("a.mp4", "../secret.txt")):
        with pytest.raises(urllib.error.HTTPError) as err:
            get(probe)
        assert err.value.code == 404


def test_stop_and_restart_keep_urls_working(server, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"abc")
    server.url(tmp_path / "a.mp4")
    server.stop()
    url = server.url(tmp_path / "a.mp4")  # restarts on demand, maybe on another port
    with get(url) as response:
        assert response.read() == b"abc"
