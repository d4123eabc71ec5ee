"""The ``{name:id}`` path parameter: a database id, never larger than SQLite's integers.

Starlette's ``int`` takes any run of digits, and a 30-digit id made every query with
it fail (a 500). ``id`` matches at most 18 digits, so a larger one is simply an
unknown path (404).
"""

from __future__ import annotations

from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor


class IdConvertor(Convertor[int]):
    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value < 10**18:
            raise ValueError(f"not a database id: {value}")
        return str(value)


if "id" not in CONVERTOR_TYPES:
    register_url_convertor("id", IdConvertor())
