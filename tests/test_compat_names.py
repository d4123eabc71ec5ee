"""sentry_sdk._compat and _types names: the uWSGI check behaves as sentry_sdk 2.75's."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import sentry_sdk._compat
import sentry_sdk._types

import tripwire
import tripwire._compat
import tripwire._types
from tripwire.testing import MemoryTransport


@pytest.mark.parametrize(
    "opt",
    [
        {},
        {"enable-threads": True},
        {"enable-threads": True, "py-call-uwsgi-fork-hooks": True},
        {"threads": b"4", "py-call-uwsgi-fork-hooks": b"true"},
        {"lazy-apps": True},
        {"lazy": b"1", "enable-threads": b"1"},
        {"enable-threads": b"false", "py-call-uwsgi-fork-hooks": True},
    ],
    ids=str,
)
def test_uwsgi_thread_support_as_sentry_sdk(
    monkeypatch: pytest.MonkeyPatch, opt: dict[str, object]
) -> None:
    uwsgi = types.ModuleType("uwsgi")
    uwsgi.opt = opt  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uwsgi", uwsgi)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        their_answer = sentry_sdk._compat.check_uwsgi_thread_support()
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        our_answer = tripwire._compat.check_uwsgi_thread_support()
    assert our_answer == their_answer
    assert len(ours) == len(theirs) == (0 if our_answer else 1)
    if not our_answer:
        # And init() says so, in a worker that could not send.
        with pytest.warns(Warning, match="uWSGI"):
            tripwire.init(transport=MemoryTransport())


def test_outside_uwsgi_nothing_is_checked() -> None:
    assert "uwsgi" not in sys.modules
    assert tripwire._compat.check_uwsgi_thread_support() is True


def test_compat_and_types_constants_match() -> None:
    for name in ("PY37", "PY38", "PY310", "PY311"):
        assert getattr(tripwire._compat, name) == getattr(sentry_sdk._compat, name)
    for name in (
        "SENSITIVE_DATA_SUBSTITUTE",
        "BLOB_DATA_SUBSTITUTE",
        "OVER_SIZE_LIMIT_SUBSTITUTE",
        "UNPARSABLE_RAW_DATA_SUBSTITUTE",
    ):
        assert getattr(tripwire._types, name) == getattr(sentry_sdk._types, name)

    class Meta(type):
        pass

    class Old(tripwire._compat.with_metaclass(Meta, object)):  # type: ignore[misc]
        pass

    assert type(Old) is Meta and Old.__mro__[1:] == (object,)
