"""The capture path, from "the scopes in force" to "an event for the transport".

- `layers`: the entry points (`capture_event`, `capture_message`,
  `capture_exception`); they collect the scope layers for the call and hand the event
  to the client (`Client._capture`).
- `steps`: the client's list of small named steps (sampling, `apply_scopes`,
  defaults, serialize, scrub, `before_send`...), chosen once per client.
- `merge`: `apply_layers`, the named merges of the scopes' data into the event.
- `breadcrumbs`: breadcrumbs' wire form, prepared once and cached per client.
- `markers`: every fast-path marker, with the rule it encodes.
- `payload`: the event item's payload (spliced, pre-encoded breadcrumbs).

Scopes are below this package: they reach it through `tripwire._late.hooks.capture`,
bound here.
"""

from __future__ import annotations

import sys
from typing import cast

from tripwire._late import CaptureHook, hooks
from tripwire.capture import layers as layers
from tripwire.capture import merge as merge
from tripwire.capture.layers import capture_event as capture_event
from tripwire.capture.layers import capture_exception as capture_exception
from tripwire.capture.layers import capture_message as capture_message
from tripwire.capture.merge import apply_layers as apply_layers

hooks.capture = cast(CaptureHook, sys.modules[__name__])
