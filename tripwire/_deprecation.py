"""Deprecation warnings that point at the user's line, whatever tripwire frames lie between."""

from __future__ import annotations

import os
import sys
import warnings

# The tripwire package directory: frames from files under it are skipped.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def deprecated(message: str) -> None:
    """Emit a DeprecationWarning attributed to the first caller outside tripwire.

    The stack level is counted rather than fixed because the same method is reached
    through several entry points (`tripwire.start_span`, `Scope.start_span`, `Hub`...).
    Python's default registry then shows it once per call site.
    """
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)
