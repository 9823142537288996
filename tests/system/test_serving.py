"""Workers share the connections: each accepts on a socket of its own (service/serving.py).

With uvicorn's one shared socket, a burst of new connections could all land on one worker (seen:
128 of 128, the claims throughput of one worker); with a SO_REUSEPORT socket per worker the
kernel spreads them.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.serving import ReusePortListener, port_in_use
from tests.system.conftest import ServiceFactory
from tests.system.harness import FIGURES, LOOPBACK, REPO_ROOT, free_port

pytestmark = pytest.mark.slow

CONNECTIONS = 64


ESTABLISHED, LISTEN = "01", "0A"  # TCP states as /proc/net/tcp writes them


def _sockets_on(port: int, state: str) -> set[int]:
    """Socket inodes of TCP sockets in `state` whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def test_a_worker_unpickles_the_listener_as_a_socket_of_its_own() -> None:
    port = free_port()
    first = pickle.loads(pickle.dumps(ReusePortListener(LOOPBACK, port)))
    second = pickle.loads(pickle.dumps(ReusePortListener(LOOPBACK, port)))
    try:
        assert isinstance(first, socket.socket) and first is not second
        assert first.getsockname()[1] == second.getsockname()[1] == port
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        first.close()
        second.close()


def test_a_port_something_listens_on_is_in_use() -> None:
    port = free_port()
    assert not port_in_use(LOOPBACK, port)
    with socket.create_server((LOOPBACK, port)):
        assert port_in_use(LOOPBACK, port)
        assert port_in_use("0.0.0.0", port)  # a wildcard host is checked on loopback


def test_serve_refuses_a_port_in_use() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    # Held with SO_REUSEPORT, as another instance of this service holds it: binding would succeed.
    with socket.create_server((LOOPBACK, 0), reuse_port=True) as taken:
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "service.cli", "serve", "--no-migrate"]
        command += ["--host", LOOPBACK, "--port", str(port), "--workers", "2"]
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, timeout=30)
    assert done.returncode == 1
    assert b"already in use" in done.stderr + done.stdout


def test_each_worker_accepts_on_its_own_socket_and_connections_spread(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(workers=2)
    service.start()
    # Ready means one worker answers; the other may still be starting.
    deadline = time.monotonic() + 30
    while True:
        workers = service.worker_pids()
        listening = _sockets_on(service.port, LISTEN)
        own = [_socket_inodes(pid) & listening for pid in workers]
        if (len(workers) == 2 and all(own)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(workers) == 2, workers
    assert all(len(sockets) == 1 for sockets in own), own  # one listening socket each...
    assert own[0] != own[1], own  # ...not one shared by both
    clients: list[socket.socket] = []
    try:
        # A burst: the kernel completes every handshake before a worker accepts any, as when a
        # load balancer opens its pool; then each kept-alive connection is answered once.
        clients = [socket.create_connection((LOOPBACK, service.port)) for _ in range(CONNECTIONS)]
        for conn in clients:
            conn.sendall(f"GET /healthz HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        for conn in clients:
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        established = _sockets_on(service.port, ESTABLISHED)
        held = [len(_socket_inodes(pid) & established) for pid in workers]
    finally:
        for conn in clients:
            conn.close()
    FIGURES["serving"] = {"connections": CONNECTIONS, "per_worker": held}
    assert sum(held) == CONNECTIONS
    # Spread by a hash: each worker's share is binomial(64, 1/2); below 16 has odds of ~1e-5.
    assert min(held) >= CONNECTIONS // 4, held
