"""`setup_logging` of raven 6.x (`raven.conf`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

EXCLUDE_LOGGER_DEFAULTS = (
    "raven",
    "gunicorn",
    "south",
    "sentry.errors",
    "django.request",
    "dill",
)


def setup_logging(
    handler: logging.Handler, exclude: Iterable[str] = EXCLUDE_LOGGER_DEFAULTS
) -> bool:
    """Add `handler` to the root logger, as raven did.

    The `exclude` loggers stop propagating to the root logger (so they are not sent)
    and get a stderr handler of their own.

    Returns:
        False if the root logger already had a handler of the same class (then
        nothing changes), else True.
    """
    root = logging.getLogger()
    if any(type(existing) is type(handler) for existing in root.handlers):
        return False
    root.addHandler(handler)
    for name in exclude:
        excluded = logging.getLogger(name)
        excluded.propagate = False
        excluded.addHandler(logging.StreamHandler())
    return True


__all__ = ["EXCLUDE_LOGGER_DEFAULTS", "setup_logging"]
