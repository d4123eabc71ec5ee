"""What tracing calls: a sampled transaction starts, a transaction finishes.

`tracing._api.start_transaction` calls `on_sampled_transaction` for every sampled
transaction; when neither profiler is configured that is a comparison and a return.
`Transaction._send` calls `on_finish` only for a transaction holding a profile or a
continuous-profiler claim; the profile then travels to the envelope as an item of
the capture hint's `attachments` (`ProfileItem`), which the client adds to the
transaction's envelope.
"""

from __future__ import annotations

from typing import Any

from tripwire._log import logger
from tripwire.envelope import Item, PayloadRef
from tripwire.profiler import continuous_profiler as _cp
from tripwire.profiler.transaction_profiler import Profile


def on_sampled_transaction(transaction: Any, client: Any, custom: Any) -> None:
    """Profile `transaction` (a sampled root span) if a profiler asks for it."""
    if client.options is not _cp._configured_for:
        _cp.configure(client)
    mode = _cp.mode
    if mode == _cp.MODE_OFF:
        return
    try:
        if mode == _cp.MODE_TRANSACTION:
            profile = Profile(True, 0)
            sampler = client.options.get("profiles_sampler")
            context: dict[str, Any] = {}
            if callable(sampler):
                context = {
                    "transaction_context": transaction.to_json(),
                    "parent_sampled": transaction.parent_sampled,
                }
                if custom:
                    context.update(custom)
            profile._set_initial_sampling_decision(context)
            transaction._profile = profile
            if profile.sampled:
                profile.__enter__()  # the isolation scope's `profile`, then start
        else:
            transaction._continuous_profile = _cp.try_profile_lifecycle_trace_start()
    except Exception:
        logger.debug("[Profiling] could not start profiling a transaction", exc_info=True)


def on_finish(transaction: Any) -> ProfileItem | None:
    """Stop the transaction's profiling; the profile's envelope item if it is sent."""
    try:
        claim = transaction._continuous_profile
        if claim is not None:
            claim.stop()
            transaction._continuous_profile = None
        profile = transaction._profile
        if profile is None:
            return None
        transaction._profile = None
        profile.__exit__(None, None, None)
        if not profile.valid():
            return None
        return ProfileItem(profile)
    except Exception:
        logger.debug("[Profiling] could not finish a profile", exc_info=True)
        return None


class ProfileItem:
    """A transaction's profile, as an attachment-like object of the capture hint."""

    __slots__ = ("event", "options", "profile")

    add_to_transactions = True

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.event: dict[str, Any] = {}
        self.options: dict[str, Any] = {}

    def to_envelope_item(self) -> Item:
        """The `profile` item, built for the transaction event being sent."""
        payload = self.profile.to_json(self.event, self.options)
        return Item(payload=PayloadRef(json=payload), type="profile")
