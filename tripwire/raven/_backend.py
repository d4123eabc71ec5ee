"""The private tripwire client behind each raven `Client`: its options and lifecycle."""

from __future__ import annotations

import atexit
import weakref
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from tripwire.raven.base import Client

# Clients that may hold queued events: flushed when the interpreter exits (raven's
# threaded transport did the same). Weak: a dropped client needs no flush.
_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_atexit_state = {"registered": False}


def _flush_at_exit() -> None:
    for client in list(_live_clients):
        try:
            client.flush()
        except Exception:
            pass


def keep_flushed(client: Client) -> None:
    """Flush `client` at interpreter exit (registers the exit hook on first use)."""
    _live_clients.add(client)
    if not _atexit_state["registered"]:
        _atexit_state["registered"] = True
        atexit.register(_flush_at_exit)


def forget(client: Client) -> None:
    """No flush at exit for `client` (it was closed)."""
    _live_clients.discard(client)


def tripwire_options(client: Client, dsn: Optional[str], transport: Any) -> dict[str, Any]:
    """The `tripwire.Client` options for a raven client (its settings already read)."""
    from tripwire import _log

    return {
        "dsn": dsn,
        "transport": transport,
        "release": client.release,
        "environment": client.environment,
        "server_name": client.name or None,
        # Sampling and ignore_exceptions follow raven's rules, before the event is built.
        "sample_rate": 1.0,
        "include_local_variables": client.capture_locals,
        "in_app_include": sorted(client.include_paths),
        "in_app_exclude": sorted(client.exclude_paths),
        # This client must not install process-wide integrations: it is not global.
        "default_integrations": False,
        "auto_enabling_integrations": False,
        "auto_session_tracking": False,
        "enable_backpressure_handling": False,
        "spotlight": False,
        # raven's processors do the scrubbing (SanitizePasswordsProcessor by default).
        "event_scrubber": _no_scrubbing(),
        # A new client turns SDK debug output on or off process-wide: keep it as it is.
        "debug": _log._debug_handler is not None,
    }


def _no_scrubbing() -> Any:
    from tripwire.scrubber import EventScrubber

    return EventScrubber(denylist=[], send_default_pii=True)


class RemoteView:
    """What raven's ``client.remote`` (RemoteConfig) told about the DSN."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def _dsn(self) -> Any:
        return self._client.tripwire_client.parsed_dsn

    @property
    def base_url(self) -> Optional[str]:
        """``scheme://host[:port][/path]`` of the server, or None."""
        dsn = self._dsn
        return f"{dsn.scheme}://{dsn.netloc}{dsn.path}" if dsn is not None else None

    @property
    def project(self) -> Optional[str]:
        """The project id, or None."""
        return self._dsn.project_id if self._dsn is not None else None

    @property
    def public_key(self) -> Optional[str]:
        """The public key, or None."""
        return self._dsn.public_key if self._dsn is not None else None

    @property
    def secret_key(self) -> Optional[str]:
        """The legacy secret key, or None."""
        return self._dsn.secret_key if self._dsn is not None else None

    @property
    def store_endpoint(self) -> Optional[str]:
        """Where events go (tripwire sends envelopes to the envelope endpoint)."""
        return self._dsn.envelope_url if self._dsn is not None else None

    def is_active(self) -> bool:
        """Whether a DSN is configured."""
        return self._dsn is not None


__all__ = ["RemoteView", "forget", "keep_flushed", "tripwire_options"]
