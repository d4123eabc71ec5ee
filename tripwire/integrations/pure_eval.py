"""Shows, for each Python frame, the values of expressions near the failing line.

`pure_eval` evaluates only expressions without side effects (names, attributes,
subscripts, arithmetic on known-safe types ...) in the frame's scope: the function,
class body or module around the statement that was running. The ten closest to that
statement become the frame's ``vars``, keyed by their source text (``self.x``,
``a[0]``). A frame where nothing qualifies keeps its plain local variables.

Closeness: expressions that occur up to the end of the statement come first, the one
occurring latest first; expressions that occur only after it follow, nearest first.
`executing`, `pure_eval` and `asttokens` are imported when the integration is set up.
"""

from __future__ import annotations

import ast
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.integrations.executing import visit_exception_frames
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

_LIMIT = 10  # expressions kept per frame
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)


def _scope_of(statement: ast.AST) -> ast.AST | None:
    node = getattr(statement, "parent", None)
    while node is not None and not isinstance(node, _SCOPES):
        node = getattr(node, "parent", None)
    return node


def _statement_of(found: Any) -> ast.stmt | None:
    node = found.node
    while node is not None and not isinstance(node, ast.stmt):
        node = getattr(node, "parent", None)
    if isinstance(node, ast.stmt):
        return node
    statements = sorted(
        (s for s in found.statements if isinstance(s, ast.stmt)),
        key=lambda s: (s.lineno, s.col_offset),
    )
    return statements[0] if statements else None


def _ranked(
    groups: list[tuple[list[ast.expr], Any]], statement: ast.stmt
) -> list[tuple[list[ast.expr], Any]]:
    end = (statement.end_lineno or statement.lineno, statement.end_col_offset or 0)

    def closeness(group: tuple[list[ast.expr], Any]) -> tuple[int, int]:
        starts = [(n.lineno, n.col_offset) for n in group[0]]
        before = [start for start in starts if start < end]
        if before:
            return max(before)
        line, col = min(starts)
        return (-line, -col)

    return sorted(groups, key=closeness, reverse=True)[:_LIMIT]


class PureEvalIntegration(Integration):
    """Puts safely evaluated expressions from around the failing line into frame ``vars``."""

    identifier = "pure_eval"

    @staticmethod
    def setup_once() -> None:
        """Check the three packages are importable and register the processor."""
        try:
            import executing
        except ImportError:
            raise DidNotEnable("executing is not installed") from None
        try:
            import pure_eval
        except ImportError:
            raise DidNotEnable("pure_eval is not installed") from None
        try:
            import asttokens  # noqa: F401  (executing uses it to give source text)
        except ImportError:
            raise DidNotEnable("asttokens is not installed") from None

        def expressions(tb: TracebackType) -> dict[str, Any]:
            found = executing.Source.executing(tb)
            if not found.source.tree:
                return {}
            statement = _statement_of(found)
            scope = _scope_of(statement) if statement is not None else None
            if statement is None or scope is None:
                return {}
            evaluator = pure_eval.Evaluator.from_frame(tb.tb_frame)
            groups = evaluator.interesting_expressions_grouped(scope)
            tokens = found.source.asttokens()
            out: dict[str, Any] = {}
            for nodes, value in _ranked(groups, statement):
                out.setdefault(tokens.get_text(nodes[0]), value)
            return out

        def add_vars(event: EventDict, hint: Hint) -> EventDict | None:
            client = capturing_client()
            if client.get_integration(PureEvalIntegration) is None:
                return event
            serializer = getattr(client, "_serializer", None)
            if serializer is None:
                return event

            def visit(tb: TracebackType, frame: dict[str, Any]) -> None:
                found = expressions(tb)
                if found:
                    frame["vars"] = serializer.frame_vars(found)

            visit_exception_frames(event, hint, visit)
            return event

        add_internal_processor(add_vars)
