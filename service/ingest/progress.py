"""A one-line progress bar on stderr for the ingest commands (no dependency needed)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

CHUNK_BYTES = 1 << 20
_WIDTH = 30


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, interval: float = 0.25) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.interval = interval
        self.done = 0
        self._started = time.monotonic()
        self._shown = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        filled = int(share * _WIDTH)
        rate = self.done / max(now - self._started, 1e-6) / 1e6
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] {share:6.1%} "
            f"{self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB {rate:,.1f} MB/s"
        )
        self.stream.flush()


def file_chunks(path: Path, progress: ProgressBar | None = None) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            if progress:
                progress.advance(len(chunk))
            yield chunk
