"""What every benchmark gets: the emulator, the size mode, a scratch directory and a logger."""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .emulator import ExternalEmulator

T = TypeVar("T")


@dataclass
class Context:
    emulator: ExternalEmulator
    workdir: Path
    quick: bool = False
    _counter: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def size(self, full: T, quick: T) -> T:
        """``quick`` under ``--quick`` (CI smoke test), else ``full``."""
        return quick if self.quick else full

    def fresh_dir(self, name: str) -> Path:
        """A new, empty directory under the scratch directory."""
        path = self.workdir / f"{next(self._counter):03d}-{name}"
        path.mkdir(parents=True)
        return path

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)
