"""Release helpers of raven 6.x (`raven.versioning`), re-exported by `tripwire.raven`."""

from __future__ import annotations

import os
from typing import Optional

from tripwire.raven.exceptions import InvalidGitRepository


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def fetch_git_sha(path: str, head: Optional[str] = None) -> str:
    """The commit id of the git checkout at `path` (of branch `head` when given).

    Raises:
        InvalidGitRepository: `path` has no readable ``.git`` with that ref.
    """
    git_dir = os.path.join(path, ".git")
    if os.path.isdir(git_dir):
        if head is None:
            from tripwire.options import git_head

            sha = git_head(path)
        else:
            ref = f"refs/heads/{head}"
            sha = _read(os.path.join(git_dir, *ref.split("/")))
            if sha is None:
                for line in (_read(os.path.join(git_dir, "packed-refs")) or "").splitlines():
                    commit, _, name = line.partition(" ")
                    if name == ref:
                        sha = commit
                        break
        if sha:
            return sha
    raise InvalidGitRepository(f"Cannot identify HEAD for git repository at {path}")


def fetch_package_version(dist_name: str) -> str:
    """The installed version of distribution `dist_name`.

    Raises:
        importlib.metadata.PackageNotFoundError: It is not installed.
    """
    from importlib.metadata import version

    return version(dist_name)


def installed_version(name: str) -> Optional[str]:
    """The installed version of `name`, or None (never raises)."""
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


__all__ = ["fetch_git_sha", "fetch_package_version", "installed_version"]
