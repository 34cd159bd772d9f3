"""``mlperf-bert run ARGS`` as a subprocess whose output is read as it comes (the Ctrl-C tests)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class CliRun:
    """``mlperf-bert run ARGS`` as a subprocess whose stdout and stderr are collected as they come."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mlperf_bert.cli", "run", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.err = bytearray(), bytearray()
        self._readers = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _pump(stream, buf: bytearray) -> None:
        while chunk := stream.read1(4096):
            buf.extend(chunk)

    def wait_for(self, marker: str, where: str = "out", timeout: float = 60.0) -> None:
        buf = self.out if where == "out" else self.err
        deadline = time.monotonic() + timeout
        while marker.encode() not in buf:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {marker!r}; stdout {bytes(self.out)!r} stderr {bytes(self.err)!r}")
            time.sleep(0.02)

    def interrupt(self) -> float:
        self.proc.send_signal(signal.SIGINT)
        return time.monotonic()

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return rc, bytes(self.out).decode(errors="replace"), bytes(self.err).decode(errors="replace")
