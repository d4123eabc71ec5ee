"""Run test scripts in children forked from an interpreter that imported their libraries.

A differential test runs one script twice (sentry_sdk, then tripwire), each time in a
fresh interpreter; when the script imports an AI SDK, that import (seconds of CPU) is
most of each run. A zygote is an interpreter started as the scripts are
(``python -W error``), with the same environment, that runs the script's own import
header (``preload``: the lines before its first use of sentry_sdk) once, and then forks
a child per run. The child sets up argv, cwd, environment, stdio, ``sys.path[0]`` and
a new ``__main__`` as ``python script.py`` does and runs the script. The preload may
not import tripwire (its runs check what ``import tripwire`` loads), and sentry_sdk
only in a zygote for sentry_sdk's runs (``sentry_sdk=True``: its import is most of a
run that imports nothing heavy); no thread may be running (threads do not survive a
fork), or the zygote refuses to start.

What differs from a fresh interpreter: the script's ``<module>`` frame has the zygote's
as its caller (an uncaught exception's traceback skips it; a backtrace that walks the
whole stack, as loguru's, shows it), the preloaded libraries were imported before the
SDK (in sentry_sdk's zygote: after it, and after what its ``init()`` imports, django
among them), and every child has the zygote's hash seed.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, Optional

_MAX_FDS = 3


def _send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


class _Lines:
    """Newline-delimited JSON messages from a socket, with the fds that came with them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []

    def read(self) -> Optional[dict[str, Any]]:
        while b"\n" not in self.buffer:
            data, ancillary, _, _ = self.sock.recvmsg(
                65536, socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize)
            )
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    self.fds.extend(fds)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


# -- the test side ----------------------------------------------------------------------


class Zygote:
    """One zygote process; `run` is `subprocess.run(capture_output=True, text=True)`."""

    def __init__(self, preload: str, env: dict[str, str], sentry_sdk: bool = False) -> None:
        self.key = (preload, _environment(env))
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.lines = _Lines(ours)
        self.lock = threading.Lock()
        # A file, not a pipe: nothing reads the zygote's stderr until it has exited.
        self.errors = _temporary()
        self.process = subprocess.Popen(
            [sys.executable, "-W", "error", __file__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
            env=env,
            cwd=os.path.dirname(__file__),
        )
        theirs.close()
        try:
            _send(ours, {"preload": preload, "sentry_sdk": sentry_sdk})
            ready = self.lines.read()
            if ready is None or "error" in ready:
                raise RuntimeError(f"the zygote did not start: {ready}")
        except BaseException:
            self.stop()
            raise

    def run(self, argv: list[str], cwd: str, env: dict[str, str], timeout: float) -> Any:
        """What `subprocess.run([sys.executable, "-W", "error", *argv], ...)` returns."""
        with self.lock:
            out = _temporary()
            err = _temporary()
            null = os.open(os.devnull, os.O_RDONLY)
            try:
                _send(self.sock, {"argv": argv, "cwd": cwd, "env": env}, (null, out, err))
            finally:
                os.close(null)
            try:
                done = self._wait(argv, timeout)
            except BaseException:
                os.close(out)
                os.close(err)
                raise
            return subprocess.CompletedProcess(
                [sys.executable, "-W", "error", *argv],
                done["returncode"],
                _read(out),
                _read(err),
            )

    def _wait(self, argv: list[str], timeout: float) -> dict[str, Any]:
        """The child's exit status; after `timeout` seconds it is killed."""
        started = self.lines.read()
        if started is None:
            raise RuntimeError("the zygote exited")
        self.sock.settimeout(timeout)
        try:
            done = self.lines.read()
        except socket.timeout:
            os.kill(started["pid"], signal.SIGKILL)
            self.sock.settimeout(None)
            self.lines.read()  # the zygote reaped it
            raise subprocess.TimeoutExpired(argv, timeout) from None
        finally:
            self.sock.settimeout(None)
        if done is None:
            raise RuntimeError("the zygote exited")
        return done

    def stop(self) -> None:
        """Close the control socket: the zygote exits; wait for it."""
        self.sock.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            errors = _read(self.errors)
        if self.process.returncode != 0:
            raise RuntimeError(f"the zygote failed: {errors}")


def _environment(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What of the environment the preload may have read (pytest names each test in it)."""
    return tuple(sorted((k, v) for k, v in env.items() if k != "PYTEST_CURRENT_TEST"))


def _temporary() -> int:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="tripwire-zygote-")
    os.unlink(path)
    return fd


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read().decode(errors="replace")
    finally:
        os.close(fd)


# One zygote per kind (per pytest process): one that may have imported sentry_sdk, one
# that may not. A differential test alternates between the two.
_current: dict[bool, Zygote] = {}


def run(
    preload: str, argv: list[str], cwd: str, timeout: float, sentry_sdk: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `argv` (a script and its arguments) in a child of the zygote for `preload`.

    `sentry_sdk`: the preload may import sentry_sdk (only for sentry_sdk's runs). Another
    preload or environment replaces the zygote of that kind.
    """
    env = dict(os.environ)
    key = (preload, _environment(env))
    zygote = _current.get(sentry_sdk)
    if zygote is not None and zygote.key != key:
        del _current[sentry_sdk]
        zygote.stop()
        zygote = None
    if zygote is None:
        zygote = _current[sentry_sdk] = Zygote(preload, env, sentry_sdk)
    result: subprocess.CompletedProcess[str] = zygote.run(argv, cwd, env, timeout)
    return result


def descriptors() -> set[int]:
    """The zygotes' descriptors here: they outlive the test that started them."""
    return {fd for z in _current.values() for fd in (z.sock.fileno(), z.errors)}


def stop(sentry_sdk: Optional[bool] = None) -> None:
    """Stop the zygotes (`sentry_sdk`: only that kind), if any.

    tests/conftest.py stops the script headers' after each test module (they hold
    heavy libraries) and sentry_sdk's, whose preload is always the same, at the end.
    """
    kinds = list(_current) if sentry_sdk is None else [sentry_sdk]
    zygotes = [_current.pop(kind) for kind in kinds if kind in _current]
    failed: Optional[BaseException] = None
    for zygote in zygotes:
        try:
            zygote.stop()
        except BaseException as error:  # stop the others too, then say so
            failed = failed or error
    if failed is not None:
        raise failed


def preload_of(script: str) -> str:
    """A script's import header: its lines before the first that names sentry_sdk."""
    header = []
    for line in script.splitlines():
        code = line.split("#", 1)[0]
        if "sentry_sdk" in code or "KEEP" in code or "finish(" in code:
            break
        header.append(line)
    return "\n".join(header)


# -- the zygote -------------------------------------------------------------------------


def _serve(control: int) -> Optional[tuple[dict[str, Any], list[int]]]:
    """Preload, then fork a child per request; returns only in a child (or at the end)."""
    import gc
    import warnings

    sock = socket.socket(fileno=control)
    lines = _Lines(sock)
    hello = lines.read()
    if hello is None:
        return None
    filters = warnings.filters[:]
    path = sys.path[:]
    try:
        exec(compile(hello["preload"], "<preload>", "exec", dont_inherit=True), {})
    except BaseException as error:
        _send(sock, {"error": repr(error)})
        return None
    # The script sets these up itself again (its import header is the preload).
    warnings.filters[:] = filters  # type: ignore[index]
    sys.path[:] = path
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()
    banned = ("tripwire",) if hello.get("sentry_sdk") else ("sentry_sdk", "tripwire")
    problems: list[str] = [name for name in banned if name in sys.modules]
    if threading.active_count() != 1:
        problems.append(f"threads running: {threading.enumerate()}")
    if problems:
        _send(sock, {"error": f"the preload must not import {problems}"})
        return None
    # The children never collect what the preload made: their GC skips it (and so
    # does not copy every page of it).
    gc.collect()
    gc.freeze()
    _send(sock, {"ready": True})
    while True:
        request = lines.read()
        if request is None:
            return None
        fds, lines.fds = lines.fds, []
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            return request, fds
        for fd in fds:
            os.close(fd)
        _send(sock, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(sock, {"returncode": os.waitstatus_to_exitcode(status)})


def _become(request: dict[str, Any], fds: list[int]) -> tuple[Any, dict[str, Any]]:
    """Set this child up as `python -W error script.py args` would be; the script's code."""
    import builtins
    import importlib.machinery
    import types

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    path = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    main = types.ModuleType("__main__")
    # In the order `python script.py` has them (frame locals are compared).
    main.__dict__.update(
        __package__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __spec__=None,
        __annotations__={},
        __builtins__=builtins,  # the module, as in __main__ (exec would put in its dict)
        __file__=path,
        __cached__=None,
    )
    sys.modules["__main__"] = main
    with open(path, "rb") as f:
        source = f.read()
    return compile(source, path, "exec", dont_inherit=True), main.__dict__


if __name__ == "__main__":
    _job = _serve(int(sys.argv[1]))
    if _job is not None:
        _code, _globals = _become(*_job)
        del _job
        try:
            exec(_code, _globals)
        except SystemExit:
            raise
        except BaseException as _error:
            # The traceback the interpreter would print starts at the script's frame.
            _tb = _error.__traceback__.tb_next if _error.__traceback__ else None
            _error.__traceback__ = _tb
            sys.last_type, sys.last_value, sys.last_traceback = type(_error), _error, _tb
            sys.excepthook(type(_error), _error, _tb)
            raise SystemExit(1) from None
