"""tripwire: error monitoring and performance for Python, sentry_sdk-compatible.

`import tripwire as sentry_sdk` runs code written for sentry_sdk 2.x.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from tripwire import capture as capture  # binds the scopes' capture hook (_late.py)
from tripwire import integrations
from tripwire._late import hooks as _hooks
from tripwire.api import (
    add_attachment,
    add_breadcrumb,
    capture_event,
    capture_exception,
    capture_message,
    configure_scope,
    continue_trace,
    end_session,
    flush,
    flush_async,
    get_baggage,
    get_client,
    get_current_scope,
    get_current_span,
    get_global_scope,
    get_isolation_scope,
    get_traceparent,
    init,
    is_initialized,
    isolation_scope,
    last_event_id,
    new_scope,
    push_scope,
    remove_attribute,
    set_attribute,
    set_attributes,
    set_context,
    set_extra,
    set_level,
    set_measurement,
    set_tag,
    set_tags,
    set_transaction_name,
    set_user,
    start_session,
    start_span,
    start_transaction,
    trace,
    update_current_span,
)
from tripwire.consts import VERSION
from tripwire.hub import Hub
from tripwire.integrations._patch import on_undo as _on_undo
from tripwire.scope import Scope
from tripwire.transport import Transport

__version__ = VERSION

# `tripwire.monitor` is the crons decorator (as `sentry_sdk.monitor`), and also the name
# of the backpressure module. Loading the module now, then dropping the attribute the
# import bound, means no later `import tripwire.monitor` can rebind the name (Python
# binds a submodule on the package only when it is first loaded).
import tripwire.monitor  # noqa: F401 - loaded for its side effect on the name, see above

del globals()["monitor"]

# The package root puts the layers together: it binds the hooks through which lower
# layers call the integrations (see tripwire/_late.py).
_hooks.setup_integrations = integrations._setup_for_options
_hooks.on_undo = _on_undo

if TYPE_CHECKING:
    from tripwire.client import Client as Client

    # What `tripwire.monitor` is at run time (see `_LAZY`); without this, type checkers
    # see the submodule and call `@tripwire.monitor(...)` "Module not callable".
    from tripwire.crons import monitor as monitor

# Feature modules are imported on first attribute access: `import tripwire` stays cheap.
_LAZY = {
    # The client module imports everything a client uses (capture steps, serializer,
    # transport, tracing): loaded by init(), or here on first use.
    "Client": ("tripwire.client", "Client"),
    "client": ("tripwire.client", None),
    "HttpTransport": ("tripwire.transport", "HttpTransport"),
    "monitor": ("tripwire.crons", "monitor"),
    "logger": ("tripwire.logger", None),
    "metrics": ("tripwire.metrics", None),
    "profiler": ("tripwire.profiler", None),
    # Submodules sentry_sdk code reaches as attributes (`sentry_sdk.tracing.Span`).
    "tracing": ("tripwire.tracing", None),
    "tracing_utils": ("tripwire.tracing_utils", None),
    "traces": ("tripwire.traces", None),
    "envelope": ("tripwire.envelope", None),
    "utils": ("tripwire.utils", None),
    "crons": ("tripwire.crons", None),
    "sessions": ("tripwire.sessions", None),
    "session": ("tripwire.session", None),
    "attachments": ("tripwire.attachments", None),
    "scrubber": ("tripwire.scrubber", None),
    "testing": ("tripwire.testing", None),
    "serializer": ("tripwire.serializer", None),
    "worker": ("tripwire.worker", None),
    "debug": ("tripwire.debug", None),
    "data_collection": ("tripwire.data_collection", None),
    "feature_flags": ("tripwire.feature_flags", None),
    "consts": ("tripwire.consts", None),
    "types": ("tripwire.types", None),
    "spotlight": ("tripwire.spotlight", None),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'tripwire' has no attribute {name!r}")
    module = _importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


__all__ = [  # noqa: RUF022 - same order as sentry_sdk.__all__
    "Hub",
    "Scope",
    "Client",
    "Transport",
    "HttpTransport",
    "VERSION",
    "integrations",
    "init",
    "add_attachment",
    "add_breadcrumb",
    "capture_event",
    "capture_exception",
    "capture_message",
    "configure_scope",
    "continue_trace",
    "flush",
    "flush_async",
    "get_baggage",
    "get_client",
    "get_global_scope",
    "get_isolation_scope",
    "get_current_scope",
    "get_current_span",
    "get_traceparent",
    "is_initialized",
    "isolation_scope",
    "last_event_id",
    "new_scope",
    "push_scope",
    "remove_attribute",
    "set_attribute",
    "set_attributes",
    "set_context",
    "set_extra",
    "set_level",
    "set_measurement",
    "set_tag",
    "set_tags",
    "set_user",
    "start_span",
    "start_transaction",
    "trace",
    "monitor",
    "logger",
    "metrics",
    "profiler",
    "start_session",
    "end_session",
    "set_transaction_name",
    "update_current_span",
]
