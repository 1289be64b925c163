"""Watching a process the test started (the demo, a hub service): its output as it comes."""

from __future__ import annotations

import re
import subprocess
import threading
from typing import IO


class ProcessOutput:
    """A process's output (stdout, with stderr if it was sent there), collected line by line
    in a thread of its own, so that a test can wait for a line without blocking on the pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        """Whether a line so far holds ``text``."""
        return any(text in line for line in self.lines)

    def find(self, pattern: str) -> re.Match[str] | None:
        """The first match of ``pattern`` in the lines so far."""
        return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

    def __str__(self) -> str:
        return "\n".join(self.lines[-40:])
