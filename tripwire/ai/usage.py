"""Token usage on a gen_ai span, from a client's usage object.

The default shape (``prompt_tokens``, ``completion_tokens``, ``total_tokens``) is
OpenAI's, and the clients that copy it (Hugging Face's, LiteLLM's) hand it back too;
others name their counts otherwise (Cohere: ``input_tokens``, ``output_tokens``, no
total). A count the answer lacks is left out; the total, when missing, is the sum of
the other two.
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire.consts import SPANDATA


def record_usage(
    span: Any,
    usage: Any,
    inputs: str = "prompt_tokens",
    outputs: str = "completion_tokens",
    total_of: Optional[str] = "total_tokens",
) -> None:
    """Set `span`'s input, output and total token counts from `usage`'s attributes
    `inputs`, `outputs` and `total_of` (None: always the sum)."""
    prompt = getattr(usage, inputs, None)
    completion = getattr(usage, outputs, None)
    total = None if total_of is None else getattr(usage, total_of, None)
    if prompt is not None:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, prompt)
    if completion is not None:
        span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, completion)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    if total is not None:
        span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, total)


__all__ = ["record_usage"]
