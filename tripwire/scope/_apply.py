"""Compatibility path: global event processors are `scope/_global_processors.py`.

The merge of scope layers into an event (`apply_layers`) is `tripwire.capture.merge`.
"""

from __future__ import annotations

from tripwire.scope._global_processors import (
    add_global_event_processor as add_global_event_processor,
)
from tripwire.scope._global_processors import global_event_processors as global_event_processors
