"""Release detection: SENTRY_RELEASE, the git checkout (read from ``.git``), CI variables.

``tripwire.options`` fills the ``release`` option from `detect_release` when it is not given.
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["RELEASE_ENV_VARS", "detect_release", "git_head"]

# Release env vars in sentry-sdk's order: SENTRY_RELEASE beats the git checkout,
# which beats these platform variables.
_RELEASE_ENV_AFTER_GIT = (
    "HEROKU_BUILD_COMMIT",
    "HEROKU_SLUG_COMMIT",
    "SOURCE_VERSION",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "CIRCLE_SHA1",
    "GAE_DEPLOYMENT_ID",
    "K_REVISION",
)
# tripwire extension, consulted last so that every release sentry-sdk would pick
# stays the same: platforms that deploy without a .git directory.
_RELEASE_ENV_EXTRA = (
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BITBUCKET_COMMIT",
    "VERCEL_GIT_COMMIT_SHA",
    "RENDER_GIT_COMMIT",
    "CF_PAGES_COMMIT_SHA",
    "RAILWAY_GIT_COMMIT_SHA",
    "COMMIT_REF",
    "BUILDKITE_COMMIT",
)
RELEASE_ENV_VARS = ("SENTRY_RELEASE", *_RELEASE_ENV_AFTER_GIT, *_RELEASE_ENV_EXTRA)


def detect_release() -> Optional[str]:
    """Guess the release: SENTRY_RELEASE, the git checkout, then CI/hosting env vars.

    The git commit is read from the files under ``.git`` (no ``git`` subprocess),
    searching upward from the working directory.
    """
    environ = os.environ
    release = environ.get("SENTRY_RELEASE")
    if release:
        return release
    try:
        release = git_head(os.getcwd())
    except OSError:
        release = None
    if release:
        return release
    for var in _RELEASE_ENV_AFTER_GIT:
        release = environ.get(var)
        if release:
            return release
    for var in _RELEASE_ENV_EXTRA:
        release = environ.get(var)
        if release:
            return release
    return None


def git_head(start: str) -> Optional[str]:
    """Commit id HEAD points to in the repository containing ``start``, or None.

    Honors ``GIT_DIR`` and ``GIT_CEILING_DIRECTORIES`` like git; handles a ``.git``
    file (worktrees, submodules), detached HEAD, loose refs and ``packed-refs``.
    Returns None outside a repository, on an unborn branch, or for an unreadable
    (e.g. reftable) ref store.
    """
    git_dir = os.environ.get("GIT_DIR")
    if git_dir:
        return _read_head(os.path.join(start, git_dir))
    git_dir = _find_git_dir(start)
    return _read_head(git_dir) if git_dir is not None else None


def _find_git_dir(start: str) -> Optional[str]:
    ceilings = {
        os.path.normpath(p)
        for p in os.environ.get("GIT_CEILING_DIRECTORIES", "").split(os.pathsep)
        if p
    }
    directory = os.path.abspath(start)
    while True:
        dot_git = os.path.join(directory, ".git")
        if os.path.isdir(dot_git):
            return dot_git
        if os.path.isfile(dot_git):
            # Worktrees and submodules: ".git" is a file "gitdir: <path>".
            text = _read_text(dot_git)
            if text is None or not text.startswith("gitdir:"):
                return None
            return os.path.join(directory, text[len("gitdir:") :].strip())
        parent = os.path.dirname(directory)
        if parent == directory or parent in ceilings:
            return None
        directory = parent


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _is_commit_id(text: str) -> bool:
    # 40 hex digits for SHA-1 repositories, 64 for SHA-256 ones.
    return len(text) in (40, 64) and all(ch in "0123456789abcdef" for ch in text)


def _read_head(git_dir: str) -> Optional[str]:
    head = _read_text(os.path.join(git_dir, "HEAD"))
    if head is None:
        return None
    # A linked worktree keeps its own HEAD but shares branches with the main
    # repository, which its "commondir" file points to.
    common = _read_text(os.path.join(git_dir, "commondir"))
    common_dir = os.path.join(git_dir, common.strip()) if common else git_dir
    value = head.strip()
    for _ in range(5):  # symbolic refs can chain; git itself caps the depth too
        if not value.startswith("ref:"):
            return value if _is_commit_id(value) else None
        ref = value[len("ref:") :].strip()
        resolved = _read_loose_ref(git_dir, common_dir, ref)
        if resolved is None:
            return _read_packed_ref(common_dir, ref)
        value = resolved
    return None


def _read_loose_ref(git_dir: str, common_dir: str, ref: str) -> Optional[str]:
    for base in (git_dir, common_dir) if git_dir != common_dir else (git_dir,):
        text = _read_text(os.path.join(base, *ref.split("/")))
        if text is not None:
            return text.strip()
    return None


def _read_packed_ref(common_dir: str, ref: str) -> Optional[str]:
    text = _read_text(os.path.join(common_dir, "packed-refs"))
    if text is None:
        return None
    for line in text.splitlines():
        # "<id> <refname>"; "#" starts the header, "^" a peeled tag line.
        commit, _, name = line.partition(" ")
        if name == ref and _is_commit_id(commit):
            return commit
    return None
