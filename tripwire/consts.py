"""Version, SDK identity and default limits."""

from __future__ import annotations

VERSION = "0.1.0"
SDK_NAME = "tripwire.python"
USER_AGENT = f"{SDK_NAME}/{VERSION}"

DEFAULT_MAX_BREADCRUMBS = 100
DEFAULT_MAX_VALUE_LENGTH = 100_000
DEFAULT_MAX_STACK_FRAMES = 100
DEFAULT_QUEUE_SIZE = 100
DEFAULT_SHUTDOWN_TIMEOUT = 2.0

# Bounds on user data copied into an event ("databags": extra, vars, request data).
MAX_DATABAG_DEPTH = 5
MAX_DATABAG_BREADTH = 10
