"""Apache Beam integration: an exception in a DoFn becomes an event.

As sentry_sdk 2.75's ``beam`` integration:

- a DoFn's ``process``, ``start_bundle``, ``finish_bundle`` and ``setup`` (and the
  callables of ``beam.Map`` / ``FlatMap``, which Beam wraps in a DoFn) are guarded on
  the DoFn instance: an exception they raise, or raise while their generator is
  consumed, is captured (mechanism ``beam``, handled false) and re-raised unchanged;
- Beam learns a method's arguments through a ``_inspect_<method>`` hook on the DoFn;
  the hook added to `DoFn` guards the method and answers with the original's
  arguments, so Beam never sees the guard's ``*args``;
- the loggers ``root`` and ``bundle_processor.create`` are ignored (Beam's workers
  log every failure there).

The guards travel with the pickled DoFn to wherever the runner executes it; they
report only where a client has this integration. Beam is patched when the application
imports it; patches go through `_patch.py`.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Iterator
from typing import Any, Callable, Optional

from tripwire.api import capture_event
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import on_undo, patch_once
from tripwire.integrations.logging import ignore_logger
from tripwire.scope._current import get_client
from tripwire.utils import capture_internal_exceptions, event_from_exception

_METHODS = ("process", "start_bundle", "finish_bundle", "setup")
# sentry_sdk's attribute names, kept so a DoFn guarded by either SDK is not guarded twice.
_ORIGINAL = "_wrapped_{}_"
_GUARD_MARK = "_sentry_used_"
_PARDO_MARK = "_sentry_is_patched"
_INSPECT = "_inspect_{}"  # the hook name Beam looks for (apache_beam/transforms/core.py)
_MARK = "__tripwire_beam__"

# Beam's argument reader, bound when Beam's core module is patched.
_arguments_of: Optional[Callable[[Any], Any]] = None


class BeamIntegration(Integration):
    """Report exceptions raised in Apache Beam DoFns."""

    identifier = "beam"

    @staticmethod
    def setup_once() -> None:
        """Hook `DoFn` and `ParDo`; ignore Beam's worker loggers.

        Raises:
            DidNotEnable: Apache Beam is not installed.
        """
        import importlib.util

        if importlib.util.find_spec("apache_beam") is None:
            raise DidNotEnable("Apache Beam is not installed")
        ignore_logger("root")
        ignore_logger("bundle_processor.create")
        when_imported("apache_beam.transforms.core", _patch_core)


def _patch_core(core: types.ModuleType) -> None:
    global _arguments_of
    _arguments_of = getattr(core, "get_function_args_defaults", None)
    if _arguments_of is None:  # Beam before 2.50
        from apache_beam.typehints.decorators import (  # type: ignore[attr-defined]
            getfullargspec,
        )

        _arguments_of = getfullargspec
    do_fn = core.DoFn
    for name in _METHODS:
        _add_inspect_hook(do_fn, name)
    patch_once(core.ParDo, "__init__", _wrap_pardo_init, _MARK)


def _add_inspect_hook(do_fn: type, name: str) -> None:
    hook_name = _INSPECT.format(name)
    if not hasattr(do_fn, name) or getattr(vars(do_fn).get(hook_name), _MARK, False):
        return
    previous = vars(do_fn).get(hook_name)
    hook = _inspect_hook(name)
    setattr(hook, _MARK, True)
    setattr(do_fn, hook_name, hook)

    def undo() -> None:
        if vars(do_fn).get(hook_name) is hook:
            if previous is None:
                delattr(do_fn, hook_name)
            else:
                setattr(do_fn, hook_name, previous)

    on_undo(undo)


def _inspect_hook(name: str) -> Callable[[Any], Any]:
    def inspect_method(self: Any) -> Any:
        # Beam asks before it first runs the method: guard it now, answer for the original.
        original = getattr(self, _ORIGINAL.format(name), None)
        if original is None:
            original = getattr(self, name)
            _guard(self, name, original)
        assert _arguments_of is not None
        return _arguments_of(original)

    setattr(inspect_method, _GUARD_MARK, True)
    return inspect_method


def _guard(fn: Any, name: str, original: Any) -> None:
    setattr(fn, _ORIGINAL.format(name), original)
    setattr(fn, name, _guarded(original))


def _wrap_pardo_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self, _PARDO_MARK, False):
            with capture_internal_exceptions():
                _guard_methods(fn)
                setattr(self, _PARDO_MARK, True)
        return original(self, fn, *args, **kwargs)

    return __init__


def _guard_methods(fn: Any) -> None:
    """Guard the DoFn's methods whose `_inspect_` hook will not (Beam's Map wrapper)."""
    for name in _METHODS:
        method = getattr(fn, name, None)
        if method is None:
            continue
        hook = getattr(fn, _INSPECT.format(name), None)
        if getattr(hook, _GUARD_MARK, False) or getattr(method, _GUARD_MARK, False):
            continue
        _guard(fn, name, method)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            result = method(*args, **kwargs)
        except Exception:
            _capture(sys.exc_info())
            raise
        if isinstance(result, types.GeneratorType):
            return _guarded_iteration(result)
        return result

    setattr(guarded, _GUARD_MARK, True)
    return guarded


def _guarded_iteration(generator: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from generator
    except Exception:
        _capture(sys.exc_info())
        raise


def _capture(exc_info: Any) -> None:
    with capture_internal_exceptions():
        client = get_client()
        if client.get_integration(BeamIntegration) is None:
            return
        event, hint = event_from_exception(
            exc_info,
            client_options=client.options,
            mechanism={"type": "beam", "handled": False},
        )
        capture_event(event, hint=hint)
