"""sentry_sdk._compat's names: interpreter facts and the uWSGI thread-support check."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from tripwire.consts import FALSE_VALUES

PY37 = sys.version_info >= (3, 7)
PY38 = sys.version_info >= (3, 8)
PY310 = sys.version_info >= (3, 10)
PY311 = sys.version_info >= (3, 11)


def with_metaclass(meta: Any, *bases: Any) -> Any:
    """A base class that makes the class deriving from it use `meta` (py2-era helper)."""

    class _Temporary(meta):  # type: ignore[misc]
        def __new__(cls, name: str, this_bases: Any, namespace: dict[str, Any]) -> Any:
            return meta(name, bases, namespace)

    return type.__new__(_Temporary, "_Temporary", (), {})


def _uwsgi_option(options: Any, name: str) -> bool:
    value = options.get(name, False)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, bool):
        return value
    return bool(value) and str(value).lower() not in FALSE_VALUES


def check_uwsgi_thread_support() -> bool:
    """False (with a warning) inside a uWSGI worker that cannot run the SDK's threads.

    The SDK sends from a background thread. uWSGI runs without threads unless told
    (`--enable-threads`, or `--threads`), and in its default preforking mode a thread
    started before the fork is dead in the workers unless `--py-call-uwsgi-fork-hooks`
    lets Python's after-fork hooks run.
    """
    if "uwsgi" not in sys.builtin_module_names and "uwsgi" not in sys.modules:
        return True  # not inside uWSGI: its module is built into the uWSGI binary
    try:
        from uwsgi import opt  # lazy: exists only inside uWSGI
    except ImportError:
        return True
    threads = "threads" in opt or _uwsgi_option(opt, "enable-threads")
    lazy = _uwsgi_option(opt, "lazy-apps") or _uwsgi_option(opt, "lazy")
    fork_hooks = _uwsgi_option(opt, "py-call-uwsgi-fork-hooks")
    if lazy and not threads:
        warnings.warn(
            "tripwire: uWSGI runs without threads, so events are not sent; "
            "start it with --enable-threads",
            Warning,
            stacklevel=2,
        )
        return False
    if not lazy and not (threads and fork_hooks):
        warnings.warn(
            "tripwire: uWSGI forks its workers without thread support, so events are "
            "not sent from them; start it with --enable-threads and "
            "--py-call-uwsgi-fork-hooks",
            Warning,
            stacklevel=2,
        )
        return False
    return True


__all__ = ["PY37", "PY38", "PY310", "PY311", "check_uwsgi_thread_support", "with_metaclass"]
