"""What a gen_ai span of one model call may carry, by the user's data rules.

With `data_collection` given by the user its ``gen_ai`` inputs / outputs decide, for
the prompts and tool definitions / the answers and tool calls alike. Without it
prompts and answers go with ``send_default_pii`` and the integration's
``include_prompts``, and tool definitions and tool calls always go (sentry_sdk sent
them before `data_collection` existed, and still does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DataRules:
    """The rules of one call: `inputs`, `outputs`, `tools` (definitions), `tool_calls`."""

    __slots__ = ("inputs", "outputs", "tool_calls", "tools")

    def __init__(self, options: Mapping[str, Any], include_prompts: bool = True) -> None:
        collection = options.get("data_collection")
        if isinstance(collection, dict) and collection.get("provided_by_user"):
            rules = collection["gen_ai"]
            self.inputs = bool(rules["inputs"])
            self.outputs = bool(rules["outputs"])
            self.tools, self.tool_calls = self.inputs, self.outputs
        else:
            self.inputs = self.outputs = bool(options.get("send_default_pii") and include_prompts)
            self.tools = self.tool_calls = True


__all__ = ["DataRules"]
