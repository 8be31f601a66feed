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
