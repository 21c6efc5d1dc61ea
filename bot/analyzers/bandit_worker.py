"""Warm Bandit: long-lived worker processes that keep Bandit's plugins loaded between reviews.

Bandit's CLI spends most of a typical review starting up (about 0.2 s: importing Bandit and
loading its plugins, for a file it then checks in milliseconds). A worker pays that once and then
answers requests over a pipe. Each worker is a process of its own, not a thread of the service:
Bandit is pure Python and holds the GIL for seconds on a large file, and a process can be killed.

Each request does what ``bandit --format json --quiet -- ./a.py ./b.py`` does in the review's
workspace (a fresh ``BanditConfig`` and ``BanditManager``, the CLI's default profile and
exclusions, Bandit's own JSON formatter), so the report is the CLI's, byte for byte apart from
the timestamp and metrics; tests/test_warm_bandit.py checks the findings against the CLI's.

Bounds, enforced by the parent while it waits (it polls the pipe every 50 ms):

- a per-request timeout: the worker is killed, the request fails;
- a memory ceiling: the worker's resident set (``/proc/<pid>/statm``) above ``memory_limit``
  during or after a request kills it and fails the request; above half of it after a request,
  or after ``max_requests`` requests, the worker is retired and the next request starts a fresh
  one; an address-space limit inside the worker is the backstop;
- a worker that exits, or answers garbage, fails the request.

A failed request raises :class:`AnalyzerError`, which the pipeline reports as Bandit's checks not
having run: never a clean result. The failed worker is gone; the next request gets a new one.

The worker side (``python bandit_worker.py``) imports only the standard library and Bandit.
Protocol: each message is a 4-byte big-endian length and that many bytes of JSON. The worker
first sends ``{"ready": true, "version": ...}``; requests are ``{"cwd", "targets"}``; answers are
``{"ok": true, "report": "<Bandit's JSON>"}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 1 << 30
_POLL_SECONDS = 0.05


# --------------------------------------------------------------------------------------------
# The worker process (standard library and Bandit only)


def _worker_main() -> int:  # pragma: no cover - runs in the worker process
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever Bandit prints goes to stderr, never into the protocol
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    def send(message: dict) -> None:
        data = json.dumps(message).encode()
        proto_out.write(_HEADER.pack(len(data)) + data)

    def recv() -> dict | None:
        header = _read_exactly(proto_in, _HEADER.size)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        body = _read_exactly(proto_in, length)
        return None if body is None else json.loads(body)

    address_space = int(os.environ.get("PATCHWARDEN_BANDIT_ADDRESS_SPACE", "0") or 0)
    if address_space > 0:
        import resource

        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    try:
        import copy
        import io
        import logging

        import bandit
        from bandit.core import config as b_config
        from bandit.core import constants, extension_loader
        from bandit.core import manager as b_manager
        from bandit.formatters import json as json_formatter

        # As the CLI with --quiet: root logger at WARNING to stderr.
        root = logging.getLogger()
        root.handlers = [logging.StreamHandler(sys.stderr)]
        root.setLevel(logging.WARNING)
        logging.captureWarnings(True)
        extension_mgr = extension_loader.MANAGER
        conf = b_config.BanditConfig()
        profile = {
            "include": set(conf.get_option("tests") or []),
            "exclude": set(conf.get_option("skips") or []),
        }
        extension_mgr.validate_profile(profile)
        excluded = ",".join(constants.EXCLUDE)  # the CLI's default --exclude
        ranking = constants.RANKING[0]  # the CLI's default -l / -i: everything
    except Exception as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1

    class Sink(io.StringIO):
        name = "<patchwarden>"

        def close(self) -> None:  # Bandit's formatter closes its file; keep the text
            pass

    send({"ready": True, "version": bandit.__version__, "pid": os.getpid()})
    while True:
        request = recv()
        if request is None:
            return 0
        try:
            os.chdir(request["cwd"])
            mgr = b_manager.BanditManager(
                b_config.BanditConfig(),
                "file",
                False,
                profile=copy.deepcopy(profile),
                verbose=False,
                quiet=True,
                ignore_nosec=False,
            )
            mgr.discover_files(list(request["targets"]), False, excluded)
            if not mgr.b_ts.tests:
                raise RuntimeError("no tests would be run")
            mgr.run_tests()
            sink = Sink()
            json_formatter.report(mgr, sink, ranking, ranking, 3)  # -n 3, the CLI's default
            answer = {"ok": True, "report": sink.getvalue()}
        except MemoryError:
            send({"ok": False, "error": "ran out of memory"})
            return 3
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            with contextlib.suppress(OSError):
                os.chdir("/")
        send(answer)


def _read_exactly(stream, size: int) -> bytes | None:  # pragma: no cover - worker side
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# The parent side


class WorkerFailure(Exception):
    """A request failed; ``str()`` is the reason, phrased after 'bandit ' in the summary."""


class WorkerUnavailable(Exception):
    """No worker can run here at all (Bandit not importable by this Python): use the CLI."""


class _Worker:
    def __init__(self, memory_limit: int, address_space: int, deadline: float) -> None:
        env = {**os.environ, "PATCHWARDEN_BANDIT_ADDRESS_SPACE": str(address_space)}
        env.pop("PYTHONSTARTUP", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=env,
            start_new_session=True,  # its own process group: killed as a whole
            close_fds=True,
        )
        self.memory_limit = memory_limit
        self.requests = 0
        self.buffer = b""
        try:
            hello = self._receive(deadline, what="start")
        except WorkerFailure:
            self.kill()
            raise
        if not hello.get("ready"):
            self.kill()
            raise WorkerUnavailable(hello.get("error", "the worker did not start"))
        self.version = hello.get("version")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        from bot.analyzers.base import rss_bytes  # parent side only: the worker imports no bot code

        return rss_bytes(self.proc.pid)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def request(self, message: dict, deadline: float) -> dict:
        data = json.dumps(message).encode()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(_HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise WorkerFailure(f"crashed: its worker stopped taking requests ({exc})") from None
        self.requests += 1
        answer = self._receive(deadline, what="request")
        rss = self.rss()
        if rss > self.memory_limit:
            raise WorkerFailure(
                f"used {rss / 2**20:.0f} MB, over its memory ceiling of {self.memory_limit / 2**20:.0f} MB"
            )
        return answer

    def _receive(self, deadline: float, what: str) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            if len(self.buffer) >= _HEADER.size:
                (length,) = _HEADER.unpack_from(self.buffer)
                if length > _MAX_MESSAGE:
                    raise WorkerFailure("crashed: its worker answered garbage")
                if len(self.buffer) >= _HEADER.size + length:
                    body = self.buffer[_HEADER.size : _HEADER.size + length]
                    self.buffer = self.buffer[_HEADER.size + length :]
                    try:
                        return json.loads(body)
                    except ValueError:
                        raise WorkerFailure("crashed: its worker answered garbage") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailure("timeout")
            rss = self.rss()
            if rss > self.memory_limit:
                raise WorkerFailure(
                    f"used {rss / 2**20:.0f} MB, over its memory ceiling of "
                    f"{self.memory_limit / 2**20:.0f} MB"
                )
            if poller.poll(min(left, _POLL_SECONDS) * 1000):
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.proc.wait(5)
                    how = f"signal {-code}" if code < 0 else f"exit status {code}"
                    raise WorkerFailure(f"crashed: its worker died during the {what} ({how})")
                self.buffer += chunk


class _Job:
    """One request in flight: lets a cancelled review kill the worker that runs it."""

    def __init__(self) -> None:
        self.cancelled = False
        self.worker: _Worker | None = None
        self.lock = threading.Lock()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.worker is not None:
                self.worker.kill()


class BanditWorkerPool:
    """Up to ``size`` warm Bandit workers, started on demand and shared by the engine's reviews.

    ``await pool.run(cwd, targets, timeout)`` returns Bandit's JSON report (text) or raises
    :class:`WorkerFailure` / :class:`WorkerUnavailable`. The blocking work happens on a daemon
    thread per request, so the pool serves any event loop (and none) and never blocks one.
    """

    def __init__(
        self,
        size: int = 2,
        memory_limit: int = 512 * 2**20,
        address_space: int = 4 * 2**30,
        max_requests: int = 500,
        start_timeout: float = 60.0,
    ) -> None:
        self.size = size
        self.memory_limit = memory_limit
        self.address_space = address_space
        self.max_requests = max_requests
        self.start_timeout = start_timeout
        self.started = 0  # workers started so far (tests and metrics)
        self.replaced = 0  # workers killed after a failure
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: weakref.WeakSet[_Worker] = weakref.WeakSet()
        self._closed = False
        _POOLS.add(self)
        # A pool nobody holds any more (an engine of a test, say) takes its workers with it.
        weakref.finalize(self, _kill_workers, self._idle, self._all)

    def _checkout(self, deadline: float) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        worker = _Worker(
            self.memory_limit, self.address_space, min(deadline, time.monotonic() + self.start_timeout)
        )
        with self._lock:
            self.started += 1
            self._all.add(worker)
        return worker

    def _checkin(self, worker: _Worker) -> None:
        retire = (
            self._closed
            or worker.requests >= self.max_requests
            or worker.rss() > self.memory_limit // 2
            or not worker.alive()
        )
        if retire:
            worker.kill()
            return
        with self._lock:
            self._idle.append(worker)

    def run_blocking(self, cwd: str, targets: list[str], timeout: float, job: _Job | None = None) -> str:
        job = job or _Job()
        with self._slots:
            if job.cancelled:
                raise WorkerFailure("cancelled")
            deadline = time.monotonic() + timeout
            try:
                worker = self._checkout(deadline)
            except WorkerFailure as exc:
                if str(exc) == "timeout":
                    raise WorkerFailure(f"timed out after {timeout:g} s") from None
                raise
            with job.lock:
                job.worker = worker
                if job.cancelled:
                    worker.kill()
            try:
                answer = worker.request({"cwd": cwd, "targets": targets}, deadline)
            except WorkerFailure as exc:
                worker.kill()
                with self._lock:
                    self.replaced += 1
                if str(exc) == "timeout":
                    raise WorkerFailure(f"timed out after {timeout:g} s") from None
                if job.cancelled:
                    raise WorkerFailure("cancelled") from None
                raise
            finally:
                with job.lock:
                    job.worker = None
            if not answer.get("ok"):
                if not worker.alive():
                    with self._lock:
                        self.replaced += 1
                self._checkin(worker)
                raise WorkerFailure(f"crashed: {answer.get('error', 'no reason given')}")
            self._checkin(worker)
            report = answer.get("report")
            if not isinstance(report, str):
                raise WorkerFailure("crashed: its worker answered garbage")
            return report

    async def run(self, cwd: str, targets: list[str], timeout: float) -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        job = _Job()

        def settle(method: str, value: object) -> None:
            if not future.done():
                getattr(future, method)(value)

        def work() -> None:
            try:
                value: object = self.run_blocking(cwd, targets, timeout, job)
                method = "set_result"
            except BaseException as exc:
                value, method = exc, "set_exception"
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, method, value)

        threading.Thread(target=work, name="bandit-request", daemon=True).start()
        try:
            return await future
        except asyncio.CancelledError:
            job.cancel()
            raise

    def workers(self) -> list[_Worker]:
        with self._lock:
            return [w for w in self._all if w.alive()]

    def close(self) -> None:
        """Stop every worker (idle ones now; busy ones when their request ends)."""
        self._closed = True
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
        for worker in idle:
            worker.kill()
        for worker in self.workers():
            worker.kill()


_POOLS: weakref.WeakSet[BanditWorkerPool] = weakref.WeakSet()


def _kill_workers(idle: list[_Worker], workers: weakref.WeakSet[_Worker]) -> None:
    for worker in [*idle, *workers]:
        if worker.alive():
            worker.kill()


@atexit.register
def _stop_all() -> None:
    for pool in list(_POOLS):
        pool.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_worker_main())
