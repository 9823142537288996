"""Run uvicorn with several workers, each accepting on a listening socket of its own.

uvicorn's `--workers` binds one socket in the supervisor and every worker accepts on it. Whichever
worker wakes first accepts every connection that is waiting, so a burst of new connections (a
load balancer's pool, a client's keep-alive pool) can land on one worker while the others idle:
measured with 128 connections, one worker held all of them in two rounds of three (the claims
throughput of one worker), an even split in the third. Connections are kept alive, so the split
lasts as long as they do.

Here each worker binds its own socket with SO_REUSEPORT, and the kernel spreads new connections
over the workers' sockets by a hash of their addresses. The supervisor is still uvicorn's
(`Multiprocess`: restarts a worker that dies, graceful shutdown on SIGTERM): it hands each worker
a `ReusePortListener`, which becomes that worker's own bound socket when the worker unpickles it.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, cast

log = logging.getLogger("service.serving")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT; the server listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener:
    """Stands in for a socket in the supervisor; a worker unpickles it as a socket of its own."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return reuse_port_socket, (self.host, self.port)


def supported(port: int) -> bool:
    """SO_REUSEPORT exists here (Linux, BSD), and the port is fixed (0 would give each worker
    a different one)."""
    return hasattr(socket, "SO_REUSEPORT") and port != 0


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on the port. SO_REUSEPORT would let a
    second instance of this service (same user) bind it and silently take half the connections:
    starting on a port in use must fail, as it did with one shared socket."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=1):
            return True
    except OSError:
        return False


def run_workers(config: Any) -> None:
    """Serve `config` (a uvicorn.Config with workers > 1), a socket per worker."""
    from uvicorn.supervisors import Multiprocess

    if port_in_use(config.host, config.port):
        log.error("port %d on %s is already in use", config.port, config.host)
        raise SystemExit(1)
    # Fail here, once, if the port is taken without a listener (bound by a process without
    # SO_REUSEPORT, or by another user).
    reuse_port_socket(config.host, config.port).close()
    log.info(
        "serving on http://%s:%d with %d workers, a listening socket each (SO_REUSEPORT)",
        config.host,
        config.port,
        config.workers,
    )
    listener = cast(socket.socket, ReusePortListener(config.host, config.port))
    Multiprocess(config, sockets=[listener]).run()
