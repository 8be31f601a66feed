"""Where the browser gets the bytes: Jupyter root guess, relative/copied paths, bad options."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import moving_frames, write_clip

from kling_lab.views.sources import (
    EmbedSource,
    JupyterFilesSource,
    RelativeSource,
    ServerSource,
    jupyter_root,
    make_source,
    poster_file,
)


def test_jupyter_root_from_the_session_path(tmp_path, monkeypatch):
    nb_dir = tmp_path / "projects" / "fox"
    nb_dir.mkdir(parents=True)
    monkeypatch.chdir(nb_dir)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))  # not this machine's servers
    monkeypatch.setenv("JPY_SESSION_NAME", "projects/fox/sweep.ipynb")
    assert jupyter_root() == tmp_path
    monkeypatch.setenv("JPY_SESSION_NAME", "sweep.ipynb")
    assert jupyter_root() == nb_dir
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert jupyter_root() == nb_dir
    video = nb_dir / "v one.mp4"
    video.write_bytes(b"x")
    assert JupyterFilesSource(tmp_path).video(video) == "projects/fox/v%20one.mp4"


def test_relative_and_copied_paths(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "site").mkdir()
    clip = write_clip(tmp_path / "store" / "clip.mp4", moving_frames(6))
    page = tmp_path / "site"
    assert RelativeSource(page).video(clip) == "../store/clip.mp4"
    copied = RelativeSource(page, page / "r_files")
    assert copied.video(clip) == "r_files/clip.mp4" and (page / "r_files" / "clip.mp4").is_file()
    assert copied.poster(clip) == "r_files/clip.poster.jpg"


def test_unreadable_video_gets_no_poster(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert poster_file(bad) is None


def test_make_source_options():
    assert isinstance(make_source(), ServerSource)
    assert isinstance(make_source("files", embed=True), EmbedSource)
    assert isinstance(make_source("files", files_root=Path.cwd()), JupyterFilesSource)
    with pytest.raises(ValueError, match="source must be"):
        make_source("cdn")


def test_jupyter_root_when_the_session_name_is_absolute(tmp_path, monkeypatch):
    """Issue 15 item 1: jupyter_server 2.x sets JPY_SESSION_NAME to an absolute path; the root is
    then read from the server's runtime file (jpserver-<pid>.json, pid = JPY_PARENT_PID)."""
    import json

    root = tmp_path / "jroot"
    nb_dir = root / "projects" / "fox"
    nb_dir.mkdir(parents=True)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.chdir(nb_dir)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb_dir / "sweep.ipynb"))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    (runtime / "jpserver-4242.json").write_text(json.dumps({"pid": 4242, "root_dir": str(root), "base_url": "/"}))
    (runtime / "jpserver-999.json").write_text(json.dumps({"pid": 999, "root_dir": str(nb_dir)}))  # another server
    assert jupyter_root() == root
    video = nb_dir / "kling_runs" / "v.mp4"
    video.parent.mkdir()
    video.write_bytes(b"x")
    assert JupyterFilesSource().video(video) == "projects/fox/kling_runs/v.mp4"
    # No runtime file for the parent: the server whose root holds the notebook (the deepest such root)
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    (runtime / "jpserver-999.json").unlink()
    (runtime / "jpserver-77.json").write_text(json.dumps({"pid": 77, "root_dir": str(tmp_path / "elsewhere")}))
    assert jupyter_root() == root
