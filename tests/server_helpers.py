"""`minfer serve` in a subprocess for the tests: started on a free port of 127.0.0.1, ready when
/health answers, stopped (SIGTERM, then SIGKILL) afterwards. Its log is kept for the error
message of a test that fails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60  # a cold start imports NumPy, Starlette and the model: a few seconds, more on a busy machine


@dataclass
class Server:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"minfer serve did not stop within {timeout} s of SIGTERM\n{self.log()}") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str, env: dict | None = None) -> Server:
    """`python -m minfer.cli serve ARGS --port P`, ready to answer."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="minfer-serve-", suffix=".log")[1])
    # one BLAS thread: the engine is one thread, and on a machine shared with other work (2 cores
    # here) a multi-threaded BLAS waits on its own threads (a 10-token prefill took 35x longer)
    full_env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"} | (env or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "minfer.cli", "serve", "--port", str(port), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"minfer serve exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"minfer serve did not answer within {START_SECONDS} s:\n{server.log()}")


@contextlib.contextmanager
def running(*args: str, env: dict | None = None):
    server = start(*args, env=env)
    try:
        yield server
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
