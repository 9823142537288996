"""The pieces the system tests drive: the real service as a subprocess, and a TCP proxy in front of
PostgreSQL that a test can cut and restore. Everything listens and connects on 127.0.0.1 only, and
every wait is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    """`claims-service serve` (migrate, then uvicorn) in its own process group.

    The group makes `kill()` a true crash: the uvicorn supervisor and every worker die at once
    with SIGKILL, mid-request, exactly like a lost machine. `stop()` is the polite shutdown.
    """

    def __init__(
        self,
        *,
        database_url: str,
        api_keys: Mapping[str, list[str]],
        log_path: Path,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.api_keys = dict(api_keys)
        self.log_path = log_path
        self.workers = workers
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        # Nothing of the caller's CLAIMS_* configuration may leak into the server under test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
        metrics_dir = self.log_path.parent / f"metrics-{self.port}"
        metrics_dir.mkdir(exist_ok=True)
        env.update(
            CLAIMS_DATABASE_URL=self.database_url,
            CLAIMS_API_KEYS=json.dumps(self.api_keys),
            CLAIMS_LOG_LEVEL="info",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, ready_within: float = 60.0) -> None:
        assert self._process is None, "already running"
        command = [sys.executable, "-m", "service.cli", "serve"]
        command += ["--host", LOOPBACK, "--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: see kill()
            )
        self.wait_ready(ready_within)

    def wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    code = self._process.returncode
                    raise RuntimeError(f"the service exited with {code}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return
                time.sleep(0.1)
        raise TimeoutError(f"the service was not ready within {within}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler runs, in-flight requests are cut."""
        process = self._require_running()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self._reap_group(process.pid)
        self._process = None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM (uvicorn drains and stops its workers), then SIGKILL whatever is left."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self._reap_group(process.pid)
        self._process = None

    @staticmethod
    def _reap_group(pgid: int) -> None:
        """Workers outliving their supervisor would keep serving the port: make sure none do."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"processes of group {pgid} survived SIGKILL")

    def _require_running(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "the service is not running"
        return self._process

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes (multiprocessing spawns them as its children)."""
        supervisor = self._require_running().pid
        workers = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == supervisor and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                workers.append(int(entry.name))
        return sorted(workers)

    def client(self, key: str, timeout: float = 30.0, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class TcpProxy:
    """A byte pump between the service and PostgreSQL that a test can cut and restore.

    `cut()` closes the listener and every open connection (the database "goes away": new
    connections are refused, pooled ones are reset); `restore()` listens on the same port again.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            doomed = list(self._sockets)
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in doomed:  # the pumps see the shutdown and close their sockets
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    downstream.close()
                    upstream.close()
                    return
                self._sockets.update((downstream, upstream))
            done = threading.Barrier(2, action=lambda d=downstream, u=upstream: self._close(d, u))
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst, done), daemon=True).start()

    def _close(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update(socks)
        for sock in socks:
            sock.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, done: threading.Barrier) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        # Unblock the opposite pump; the last of the two to get here closes both sockets.
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait(timeout=30)


# Figures the system tests measured ("load": {"claims": 400, ...}), printed at the end of the run
# (conftest.py) so CI logs carry the numbers docs/reliability.md quotes.
FIGURES: dict[str, dict[str, object]] = {}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0
