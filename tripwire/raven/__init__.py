"""The raven 6.x client API on top of tripwire.

Code written for raven runs with its imports changed from ``raven`` to
``tripwire.raven``::

    from tripwire.raven import Client
    from tripwire.raven.handlers.logging import SentryHandler
    from tripwire.raven.conf import setup_logging

    client = Client("https://key@o1.ingest.sentry.io/1", release="1.0")
    try:
        1 / 0
    except ZeroDivisionError:
        client.captureException(extra={"order": 42})

Each `Client` owns its own tripwire client and transport (events go out as
envelopes); the global tripwire client and scopes are left alone, so raven code and
``tripwire.init()`` can run side by side.
"""

from __future__ import annotations

from tripwire.consts import VERSION
from tripwire.raven.base import Client
from tripwire.raven.conf import setup_logging
from tripwire.raven.versioning import fetch_git_sha, fetch_package_version

__all__ = ["VERSION", "Client", "fetch_git_sha", "fetch_package_version", "setup_logging"]
