"""The exception classes of raven 6.x (`raven.exceptions`)."""

from __future__ import annotations

from tripwire.dsn import BadDsn


class APIError(Exception):
    """The server rejected an event (raised only with ``raise_send_errors=True``)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return str(self.message)


class RateLimited(APIError):
    """The server asked us to back off for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 0) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class InvalidGitRepository(Exception):
    """`fetch_git_sha` found no git checkout at the given path."""


class ConfigurationError(ValueError):
    """A client option has a value that cannot work."""


class InvalidDsn(ConfigurationError, BadDsn):
    """The DSN is malformed (also a `tripwire.dsn.BadDsn`)."""


__all__ = ["APIError", "ConfigurationError", "InvalidDsn", "InvalidGitRepository", "RateLimited"]
