"""Several HTTP worker processes on one port (`motcua serve --workers N`), each with its own listening socket.

uvicorn's multi-process mode shares one socket, so whichever worker wakes first accepts most keep-alive
connections and one core idles; it also opens that socket without saying TCP, so asyncio never sets
TCP_NODELAY and every response written in two parts waits ~40 ms for a delayed ACK. Here each worker
listens on its own SO_REUSEPORT TCP socket and the kernel spreads connections across them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from types import FrameType

from core.errors import MotcuaError

logger = logging.getLogger(__name__)
RESTART_PAUSE = 1.0  # seconds before replacing a worker that died, so a crash loop does not spin


def tcp_listener(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound TCP socket (protocol given explicitly: asyncio sets TCP_NODELAY only then)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MotcuaError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _worker(host: str, port: int) -> None:
    """One worker process: the app on its own socket until SIGTERM or SIGINT."""
    import uvicorn

    from admin_api.app import create_worker_app

    sock = tcp_listener(host, port, reuse_port=True)
    uvicorn.Server(uvicorn.Config(create_worker_app(), log_config=None)).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int) -> int:
    """Run `workers` processes until SIGTERM or SIGINT; a worker that dies is replaced."""
    tcp_listener(host, port, reuse_port=True).close()  # fail here, clearly, if the port is taken
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        logger.info("signal %s: stopping %d workers", signal.Signals(signum).name, workers)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(host, port), name=f"motcua-worker-{index}")
        process.start()
        return process

    processes = [start(i) for i in range(workers)]
    logger.info("motcua serving on http://%s:%d with %d workers", host, port, workers)
    while not stopping:
        time.sleep(0.2)
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                logger.error("worker %s exited with %s; starting a new one", process.pid, process.exitcode)
                time.sleep(RESTART_PAUSE)
                processes[index] = start(index)
    for process in processes:
        process.terminate()  # uvicorn finishes in-flight requests and runs the app's shutdown
    for process in processes:
        process.join(30)
        if process.is_alive():
            process.kill()
    return 0
