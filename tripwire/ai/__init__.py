"""AI monitoring helpers at sentry_sdk's import path (`sentry_sdk.ai`).

The LLM integrations (`tripwire.integrations.openai`, `.anthropic`) build their
``gen_ai.*`` spans with these; applications use `set_conversation_id` and the
deprecated `monitoring.ai_track` / `record_token_usage`.
"""

from __future__ import annotations

from tripwire.ai.utils import (
    GEN_AI_MESSAGE_ROLE_MAPPING,
    GEN_AI_MESSAGE_ROLE_REVERSE_MAPPING,
    normalize_message_role,
    normalize_message_roles,
    set_conversation_id,
    set_data_normalized,
)

__all__ = [
    "GEN_AI_MESSAGE_ROLE_MAPPING",
    "GEN_AI_MESSAGE_ROLE_REVERSE_MAPPING",
    "normalize_message_role",
    "normalize_message_roles",
    "set_conversation_id",
    "set_data_normalized",
]
