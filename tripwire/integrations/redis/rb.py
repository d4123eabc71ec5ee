"""Redis Blaster (`rb`): its fanout, mapping and routing clients get command spans."""

from __future__ import annotations

from types import ModuleType

from tripwire.integrations.redis._sync_common import patch_redis_client
from tripwire.integrations.redis.modules.queries import _set_db_data


def _patch_rb_clients(clients: ModuleType) -> None:
    """Patch the clients of `rb.clients` (when rb is imported)."""
    for name in ("FanoutClient", "MappingClient", "RoutingClient"):
        cls = getattr(clients, name, None)
        if cls is not None:
            patch_redis_client(cls, is_cluster=False, set_db_data_fn=_set_db_data)


def _patch_rb() -> None:
    """Patch rb now if it is imported (sentry_sdk's entry point)."""
    import sys

    clients = sys.modules.get("rb.clients")
    if clients is not None:
        _patch_rb_clients(clients)
