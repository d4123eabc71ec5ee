"""StarliteIntegration without Starlite installed (the suite's environment).

Starlite 1.x pins pydantic 1 and anyio 3, so it cannot be installed beside the rest;
its integration runs on the Litestar integration's code (tested there), and was
checked against Starlite 1.51 in a separate environment. Here: without the package,
it refuses to enable, cleanly, and patches nothing.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.starlite import StarliteIntegration

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("starlite") is not None, reason="Starlite is installed here"
)

DSN = "http://key@example.com/1"


def test_listed_without_starlite_raises_did_not_enable() -> None:
    with pytest.raises(DidNotEnable, match="Starlite is not installed"):
        tripwire.init(dsn=DSN, integrations=[StarliteIntegration()], default_integrations=False)
    assert "starlite" not in sys.modules


def test_auto_enabling_skips_it_quietly() -> None:
    tripwire.init(dsn=DSN, default_integrations=True, auto_enabling_integrations=True)
    assert tripwire.get_client().get_integration(StarliteIntegration) is None
    assert "starlite" not in sys.modules
