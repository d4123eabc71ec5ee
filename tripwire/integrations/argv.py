"""Adds `sys.argv` to every error event's extra data."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint


class ArgvIntegration(Integration):
    """Records the command line as `extra["sys.argv"]`."""

    identifier = "argv"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def add_argv(event: EventDict, hint: Hint) -> EventDict | None:
            if capturing_client().get_integration(ArgvIntegration) is not None:
                extra = event.get("extra")
                if not isinstance(extra, dict):
                    extra = event["extra"] = {}
                if isinstance(sys.argv, list):
                    extra["sys.argv"] = [str(a) for a in sys.argv]
            return event

        add_internal_processor(add_argv)
