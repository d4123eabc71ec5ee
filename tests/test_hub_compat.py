"""Hub 1.x semantics as sentry-sdk 2.75 has them, run through both SDKs.

- `push_scope()` forks the isolation scope: tags set inside (on the yielded scope or
  with the top-level functions) stay inside; the current scope is not forked.
- `Hub.current.scope` is the isolation scope; `Hub(hub)` forks both scopes for `with`.
- `Hub(...)`, `Hub.current`, `Hub.main`, `configure_scope()` and `push_scope()` warn
  (DeprecationWarning; SentryHubDeprecationWarning for the Hub) at the caller's line.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import sentry_sdk
from test_differential import run_both

import tripwire
import tripwire.hub
from tripwire.hub import GLOBAL_HUB, SentryHubDeprecationWarning
from tripwire.testing import MemoryTransport


def _push_scope_scenario(sdk: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with sdk.push_scope() as scope:
            scope.set_tag("on_pushed", "1")
            sdk.set_tag("top_level", "1")
            sdk.get_current_scope().set_tag("on_current", "1")
            sdk.add_breadcrumb(message="inside")
            sdk.capture_message("inside")
        sdk.push_scope(lambda scope: scope.set_tag("callback", "1"))
        sdk.capture_message("after")
        hub = sdk.Hub.current
        with sdk.Hub(hub):
            sdk.set_tag("in_cloned_hub", "1")
            sdk.capture_message("in clone")
        with hub.push_scope() as scope:
            scope.set_tag("hub_pushed", "1")
        with hub.configure_scope() as scope:
            scope.set_tag("hub_configured", "1")
        hub.capture_message("via hub")


def test_push_scope_and_hub_match_sentry() -> None:
    theirs, ours = run_both(_push_scope_scenario)
    assert ours == theirs
    inside, after, clone, via_hub = ours
    assert inside["tags"] == {"on_pushed": "1", "top_level": "1", "on_current": "1"}
    assert after["tags"] == {"on_current": "1"}  # only the current scope's tag stayed
    assert after["breadcrumbs"] == {"values": []}
    assert clone["tags"] == {"on_current": "1", "in_cloned_hub": "1"}
    assert via_hub["tags"] == {"on_current": "1", "hub_configured": "1"}


@pytest.mark.parametrize("sdk", [sentry_sdk, tripwire], ids=["sentry_sdk", "tripwire"])
def test_hub_current_scope_is_the_isolation_scope(sdk: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hub = sdk.Hub.current
        assert hub.scope is sdk.get_isolation_scope()
        assert sdk.Hub.current is hub
        with sdk.isolation_scope() as isolation:
            assert hub.scope is isolation
        with sdk.Hub(hub) as clone:
            assert sdk.Hub.current is clone
            assert clone.scope is sdk.get_isolation_scope()
        assert sdk.Hub.current is hub


def test_warnings_point_at_the_caller(transport: MemoryTransport) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        tripwire.Hub.current
        tripwire.Hub.main
        tripwire.Hub(tripwire.Hub.main)
        with tripwire.configure_scope():
            pass
        with tripwire.push_scope():
            pass
        tripwire.push_scope(lambda scope: None)
        tripwire.configure_scope(lambda scope: None)
    categories = [w.category for w in caught]
    assert categories == [SentryHubDeprecationWarning] * 4 + [DeprecationWarning] * 4
    assert all(w.filename == __file__ for w in caught)
    # Hub methods themselves do not warn (nor do they in sentry_sdk).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SentryHubDeprecationWarning)
        hub = tripwire.Hub.current
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hub.configure_scope(lambda scope: None)
        with hub.push_scope():
            pass
        hub.capture_message("no warning")
    assert transport.events[-1]["message"] == "no warning"


def test_hub_with_client_binds_it_globally() -> None:
    memory = MemoryTransport()
    client = tripwire.Client(transport=memory)
    with pytest.warns(SentryHubDeprecationWarning):
        hub = tripwire.Hub(client)
    assert tripwire.get_client() is client  # as sentry_sdk 2.x: Hub(client) binds globally
    assert hub.client is client
    hub.capture_message("through the hub")
    assert [e["message"] for e in memory.events] == ["through the hub"]


def test_hub_module_names() -> None:
    import sentry_sdk.hub

    assert issubclass(SentryHubDeprecationWarning, DeprecationWarning)
    assert isinstance(GLOBAL_HUB, tripwire.Hub)
    with pytest.warns(SentryHubDeprecationWarning):
        assert tripwire.Hub.main is GLOBAL_HUB
    assert isinstance(tripwire.Hub, tripwire.hub.HubMeta)
    for name in ("Client", "INSTRUMENTER", "Span", "Transaction", "NoOpSpan"):
        assert hasattr(sentry_sdk.hub, name)
        assert hasattr(tripwire.hub, name), name
