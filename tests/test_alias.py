"""`tripwire.alias`: `import sentry_sdk` served by tripwire's own modules.

Each case runs in a fresh interpreter: the test process imports the real sentry_sdk for
the differential tests, and the alias refuses to shadow an imported sentry_sdk.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sentry_sdk_and_its_submodules_are_tripwires() -> None:
    result = _run(
        """
        import tripwire.alias
        tripwire.alias.install()

        import sentry_sdk
        import sentry_sdk.monitor
        from sentry_sdk.integrations.logging import LoggingIntegration
        from sentry_sdk.scope import Scope
        import tripwire, tripwire.integrations.logging, tripwire.scope

        assert sentry_sdk is tripwire
        assert LoggingIntegration is tripwire.integrations.logging.LoggingIntegration
        assert Scope is tripwire.scope.Scope
        # The package attribute stays the crons decorator, as in sentry_sdk.
        assert callable(sentry_sdk.monitor) and not hasattr(sentry_sdk.monitor, "__path__")
        # Modules keep their own identity: nothing ran twice, reload works.
        assert tripwire.scope.__spec__.name == "tripwire.scope"
        import importlib
        importlib.reload(tripwire.integrations.logging)
        try:
            import sentry_sdk.no_such_module
        except ModuleNotFoundError as exc:
            assert exc.name == "sentry_sdk.no_such_module", exc.name
        else:
            raise AssertionError("imported a module that does not exist")
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_events_from_code_written_for_sentry_sdk_reach_tripwire_transport() -> None:
    result = _run(
        """
        import tripwire.alias
        tripwire.alias.install()
        from tripwire.testing import MemoryTransport

        import sentry_sdk
        memory = MemoryTransport()
        sentry_sdk.init(transport=memory)
        sentry_sdk.set_tag("via", "alias")
        sentry_sdk.capture_message("hello")
        event = memory.events[0]
        assert event["message"] == "hello" and event["tags"] == {"via": "alias"}, event
        assert event["sdk"]["name"] == "tripwire.python"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr


def test_refuses_to_shadow_an_imported_sentry_sdk_and_uninstalls() -> None:
    result = _run(
        """
        import sys, types
        sys.modules["sentry_sdk"] = types.ModuleType("sentry_sdk")  # the real one, say
        import tripwire.alias
        try:
            tripwire.alias.install()
        except RuntimeError as exc:
            assert "before anything imports sentry_sdk" in str(exc)
        else:
            raise AssertionError("installed over an imported sentry_sdk")
        assert not tripwire.alias.installed()

        del sys.modules["sentry_sdk"]
        tripwire.alias.install()
        tripwire.alias.install()  # idempotent
        import sentry_sdk.scope
        assert tripwire.alias.installed()
        tripwire.alias.uninstall()
        assert not tripwire.alias.installed()
        assert not [n for n in sys.modules if n.split(".")[0] == "sentry_sdk"]
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
