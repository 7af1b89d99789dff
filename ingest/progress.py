"""A one-line progress bar on stderr for long command runs, drawn only on a terminal."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30
FEW = 5  # runs of this many items or fewer end before a bar would tell anything


class Progress:
    """`replay 120/1000 [###.....]  12 %`, redrawn in place with a carriage return.

    Written by hand: a bar is a dozen lines, and a dependency (tqdm, rich) would be one more
    package to pin and audit for them. Off a terminal (a pipe, a log, a test) it writes
    nothing at all, so stderr stays as clean as stdout is for --json."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self._label, self._total, self._stream = label, total, stream
        self._on = total > FEW and stream.isatty()

    def show(self, done: int) -> None:
        if not self._on:
            return
        filled = WIDTH * done // self._total
        bar = "#" * filled + "." * (WIDTH - filled)
        percent = 100 * done // self._total
        self._stream.write(f"\r{self._label} {done}/{self._total} [{bar}] {percent:>3} %")
        self._stream.flush()

    def close(self) -> None:
        if self._on:
            self._stream.write("\n")
            self._stream.flush()
