"""build_options: defaults, validation, environment variables and release detection."""

from __future__ import annotations

import math
import os
import pathlib
import socket
import subprocess
import sys
from decimal import Decimal
from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripwire.dsn import BadDsn
from tripwire.options import DEFAULT_OPTIONS, RELEASE_ENV_VARS, build_options, detect_release

TRIPWIRE_EXTENSIONS = {"spool_dir", "spool_max_bytes", "spool_max_age"}
ENV_VARS = (
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_DEBUG",
    "SENTRY_KEEP_ALIVE",
    "SENTRY_SPOTLIGHT",
    "GIT_DIR",
    *RELEASE_ENV_VARS,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """Run every test outside any git repository and without SENTRY_*/CI variables."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


# --- defaults -----------------------------------------------------------------------------


def test_defaults_match_sentry_sdk() -> None:
    consts = pytest.importorskip("sentry_sdk.consts")
    theirs = consts.DEFAULT_OPTIONS
    assert set(DEFAULT_OPTIONS) - set(theirs) == TRIPWIRE_EXTENSIONS
    assert set(theirs) <= set(DEFAULT_OPTIONS)
    # No deliberate differences in defaults (shutdown_timeout is 2.0 here, 2 there: equal).
    for key, value in theirs.items():
        assert DEFAULT_OPTIONS[key] == value, key
        assert type(DEFAULT_OPTIONS[key]) in (type(value), float), key


def test_every_option_of_client_constructor_is_accepted() -> None:
    consts = pytest.importorskip("sentry_sdk.consts")
    import inspect

    params = set(inspect.signature(consts.ClientConstructor.__init__).parameters) - {"self"}
    assert params == set(DEFAULT_OPTIONS) - TRIPWIRE_EXTENSIONS


def test_every_option_has_a_checker() -> None:
    from tripwire.options import _CHECKS

    assert set(_CHECKS) == set(DEFAULT_OPTIONS)


# Options whose None default is filled in from the environment or the machine.
RESOLVED = {"environment", "server_name", "debug", "keep_alive", "project_root", "send_default_pii"}


@pytest.mark.parametrize("name", sorted(set(DEFAULT_OPTIONS) - RESOLVED))
def test_default_value_passes_its_own_check(name: str) -> None:
    assert build_options(**{name: DEFAULT_OPTIONS[name]})[name] == DEFAULT_OPTIONS[name]


def test_resolved_defaults(tmp_path: pathlib.Path) -> None:
    options = build_options()
    assert set(options) == set(DEFAULT_OPTIONS)
    assert options["dsn"] is None
    assert options["release"] is None  # no repository, no env var
    assert options["environment"] == "production"
    assert options["server_name"] == socket.gethostname()
    assert options["project_root"] == str(tmp_path / "work")
    assert options["send_default_pii"] is False
    assert options["debug"] is False
    assert options["keep_alive"] is False
    assert options["spotlight"] is None
    assert options["max_value_length"] is None
    assert options["max_breadcrumbs"] == 100
    assert options["trace_ignore_status_codes"] == frozenset()
    assert options["_experiments"] == {}
    assert options["spool_dir"] is None


def test_each_build_gets_its_own_mutable_values() -> None:
    first = build_options()
    first["integrations"].append("x")
    first["_experiments"]["y"] = 1
    first["trace_propagation_targets"].append("z")
    second = build_options()
    assert second["integrations"] == []
    assert second["_experiments"] == {}
    assert second["trace_propagation_targets"] == [".*"]
    assert DEFAULT_OPTIONS["integrations"] == []


def test_explicit_values_are_kept() -> None:
    options = build_options(
        release="1.0",
        environment="staging",
        server_name="web-1",
        dist="7",
        send_default_pii=True,
        debug=False,
        max_breadcrumbs=5,
        sample_rate=0.25,
        project_root="/srv/app",
    )
    assert options["release"] == "1.0"
    assert options["environment"] == "staging"
    assert options["server_name"] == "web-1"
    assert options["dist"] == "7"
    assert options["send_default_pii"] is True
    assert options["max_breadcrumbs"] == 5
    assert options["sample_rate"] == 0.25
    assert options["project_root"] == "/srv/app"


def test_empty_strings_are_kept_like_sentry_sdk() -> None:
    options = build_options(release="", environment="", server_name="", project_root="")
    assert (options["release"], options["environment"]) == ("", "")
    assert (options["server_name"], options["project_root"]) == ("", "")


# --- positional DSN -----------------------------------------------------------------------


def test_dsn_positional_or_keyword() -> None:
    dsn = "https://key@o1.ingest.sentry.io/42"
    assert build_options(dsn)["dsn"] == dsn
    assert build_options(dsn=dsn)["dsn"] == dsn
    assert build_options(None)["dsn"] is None
    # Like sentry-sdk: the keyword wins over the positional argument.
    assert build_options("https://a@h/1", dsn="https://b@h/2")["dsn"] == "https://b@h/2"
    # A mapping of options may come positionally too.
    assert build_options({"dsn": dsn, "release": "r"}, release="s")["release"] == "s"


def test_dsn_object_and_bytes_are_stored_as_strings() -> None:
    from tripwire.dsn import Dsn

    assert build_options(Dsn.parse("https://key@host:443/42"))["dsn"] == "https://key@host/42"
    assert build_options(b"https://key@host/42")["dsn"] == "https://key@host/42"


def test_bad_positional_arguments() -> None:
    with pytest.raises(TypeError, match="at most one positional"):
        build_options("https://a@h/1", "x")
    with pytest.raises(TypeError, match="positional argument must be a DSN"):
        build_options(42)


def test_malformed_dsn_is_rejected_at_build_time() -> None:
    with pytest.raises(BadDsn, match="project id"):
        build_options("https://key@host/")
    with pytest.raises(BadDsn, match="public key"):
        build_options(dsn="https://host/1")


@pytest.mark.parametrize("disabled", ["", None])
def test_disabled_dsn(disabled: Optional[str]) -> None:
    assert build_options(dsn=disabled)["dsn"] == disabled


# --- validation ---------------------------------------------------------------------------


def test_unknown_option_suggests_the_closest_name() -> None:
    with pytest.raises(
        TypeError, match=r"Unknown option 'sample_rat' \(did you mean 'sample_rate'\?\)"
    ):
        build_options(sample_rat=1.0)
    with pytest.raises(TypeError, match=r"Unknown option 'traces_sampel_rate' \(did you mean"):
        build_options(traces_sampel_rate=1.0)
    with pytest.raises(TypeError, match=r"^Unknown option 'zzz'$"):
        build_options(zzz=1)


class _Transport:
    def capture_envelope(self, envelope: Any) -> None:
        pass


WRONG_TYPES = [
    ("dsn", 5, "a DSN string"),
    ("max_breadcrumbs", "100", "an int"),
    ("max_breadcrumbs", 1.5, "an int"),
    ("transport_queue_size", None, "an int"),
    ("shutdown_timeout", "2", "a number"),
    ("max_value_length", "1", "an int"),
    ("before_send", 5, "callable or None"),
    ("before_breadcrumb", "f", "callable or None"),
    ("traces_sampler", 1, "callable or None"),
    ("ignore_errors", [5], "exception classes or strings"),
    ("ignore_errors", ["KeyError", object], "exception classes or strings"),
    ("ignore_errors", ValueError, "a list of exception classes"),
    ("transport", 5, "a Transport instance, a Transport subclass or a callable"),
    ("integrations", object(), "a list of integrations"),
    ("integrations", "flask", "a list of integrations"),
    ("in_app_include", [1], "a list of strings"),
    ("in_app_exclude", 3, "a list of strings"),
    ("trace_propagation_targets", [1], "strings or regex patterns"),
    ("trace_ignore_status_codes", ["404"], "HTTP status codes"),
    ("trace_ignore_status_codes", 404, "HTTP status codes"),
    ("release", 5, "a string"),
    ("environment", b"prod", "a string"),
    ("server_name", 1, "a string"),
    ("debug", "yes", "a bool"),
    ("attach_stacktrace", 1.0, "a bool"),
    ("max_request_body_size", 5, "one of"),
    ("proxy_headers", [("a", "b")], "a dict"),
    ("_experiments", [], "a dict"),
    ("functions_to_trace", ["mod.func"], "dicts"),
    ("socket_options", [(1, 2)], "tuples"),
    ("spotlight", 5, "a bool, a URL string or None"),
    ("ca_certs", 5, "a path"),
    ("org_id", 1.5, "a string"),
    ("spool_dir", 5, "a path"),
    ("spool_max_bytes", "1", "an int"),
    ("spool_max_age", "1", "a number"),
]


@pytest.mark.parametrize(("name", "value", "expected"), WRONG_TYPES)
def test_wrong_type_names_option_expected_and_got(name: str, value: Any, expected: str) -> None:
    with pytest.raises(TypeError) as info:
        build_options(**{name: value})
    message = str(info.value)
    assert f"option {name!r} must be" in message
    assert expected in message
    # The culprit is named: the value's type, or for a sequence the offending item.
    assert f"got {type(value).__name__}" in message or "got an item" in message


def test_wrong_item_type_names_the_item() -> None:
    with pytest.raises(TypeError, match=r"option 'ignore_errors' .* got an item int 5"):
        build_options(ignore_errors=[ValueError, 5])


OUT_OF_RANGE = [
    ("max_breadcrumbs", -1),
    ("transport_queue_size", -5),
    ("shutdown_timeout", -0.5),
    ("max_stack_frames", -1),
    ("max_value_length", -1),
    ("db_query_source_threshold_ms", -1),
    ("max_request_body_size", "huge"),
    ("profile_lifecycle", "always"),
    ("trace_lifecycle", "sometimes"),
    ("instrumenter", "jaeger"),
    ("spool_max_bytes", -1),
    ("spool_max_age", -1.0),
]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_is_a_value_error(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"option {name!r} must be"):
        build_options(**{name: value})


@given(st.floats(0.0, 1.0))
def test_any_rate_in_range_is_accepted(rate: float) -> None:
    assert build_options(sample_rate=rate, traces_sample_rate=rate)["sample_rate"] == rate


RATE_OPTIONS = ("sample_rate", "traces_sample_rate", "profiles_sample_rate")
NOT_RATES = ["0.5", "x", 1.5, -0.1, math.nan, [], Decimal("2")]


@pytest.mark.parametrize("name", [*RATE_OPTIONS, "profile_session_sample_rate"])
@pytest.mark.parametrize("value", NOT_RATES, ids=repr)
def test_a_sample_rate_that_is_not_one_is_kept_with_a_warning(
    name: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # sentry_sdk takes any value (applications pass environment strings): init() must
    # not raise where it starts. What each does then is in test_sampling_options.py.
    with caplog.at_level("WARNING", logger="tripwire.errors"):
        options = build_options(**{name: value})
    assert options[name] is value
    (record,) = caplog.records
    assert record.getMessage().startswith(f"option {name!r} should be a number between 0 and 1")


@pytest.mark.parametrize("value", [True, False, 0, 1, 0.25, Decimal("0.5")], ids=repr)
def test_a_rate_or_a_bool_is_no_warning(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="tripwire.errors"):
        for name in RATE_OPTIONS:
            assert build_options(**{name: value})[name] is value
    assert caplog.records == []


def test_accepted_spellings() -> None:
    with pytest.warns(DeprecationWarning, match="ignored when data_collection is set"):
        options = _accepted_spellings()
    assert options["debug"] == 1
    assert options["attach_stacktrace"] == 0
    assert options["sample_rate"] == Decimal("0.5")
    assert options["org_id"] == "17"
    assert options["ca_certs"] == "/etc/ssl/ca.pem"
    assert options["spool_dir"] == "/var/spool/tripwire"
    assert options["spool_max_age"] == 60


def _accepted_spellings() -> dict[str, Any]:
    return build_options(
        debug=1,
        attach_stacktrace=0,
        send_default_pii=True,
        sample_rate=Decimal("0.5"),
        traces_sample_rate=1,
        shutdown_timeout=0,
        max_breadcrumbs=0,
        org_id=17,
        ca_certs=pathlib.Path("/etc/ssl/ca.pem"),
        spool_dir=pathlib.Path("/var/spool/tripwire"),
        spool_max_bytes=1024,
        spool_max_age=60,
        max_request_body_size="always",
        instrumenter="otel",
        profile_lifecycle="trace",
        trace_lifecycle="stream",
        spotlight="http://localhost:8969/stream",
        data_collection={"user_info": True},
        socket_options=[(6, 1, 1)],
    )


def test_sequences_are_normalized() -> None:
    integration = object()
    options = build_options(
        integrations=(integration,),
        in_app_include=("myapp", "lib"),
        in_app_exclude="vendor",
        ignore_errors=(ValueError, "KeyError"),
        trace_ignore_status_codes=[404, range(500, 503)],
        functions_to_trace=({"qualified_name": "m.f"},),
        _experiments={"a": 1},
    )
    assert options["integrations"] == [integration]
    assert options["in_app_include"] == ["myapp", "lib"]
    assert options["in_app_exclude"] == ["vendor"]
    assert options["ignore_errors"] == [ValueError, "KeyError"]
    assert options["trace_ignore_status_codes"] == frozenset({404, 500, 501, 502})
    assert options["functions_to_trace"] == [{"qualified_name": "m.f"}]
    assert options["_experiments"] == {"a": 1}
    assert build_options(trace_ignore_status_codes=range(400, 402))[
        "trace_ignore_status_codes"
    ] == frozenset({400, 401})


def test_none_for_a_list_option_means_empty() -> None:
    options = build_options(integrations=None, ignore_errors=None, _experiments=None)
    assert options["integrations"] == []
    assert options["ignore_errors"] == []
    assert options["_experiments"] == {}
    assert build_options(trace_propagation_targets=None)["trace_propagation_targets"] is None


def test_experiments_dict_is_copied() -> None:
    experiments = {"a": 1}
    options = build_options(_experiments=experiments)
    options["_experiments"]["b"] = 2
    assert experiments == {"a": 1}


def test_transport_forms() -> None:
    instance = _Transport()
    assert build_options(transport=instance)["transport"] is instance
    assert build_options(transport=_Transport)["transport"] is _Transport

    def send(event: dict[str, Any]) -> None:
        pass

    assert build_options(transport=send)["transport"] is send


# --- environment --------------------------------------------------------------------------


def test_sentry_dsn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://env@host/1")
    assert build_options()["dsn"] == "https://env@host/1"
    assert build_options(None)["dsn"] == "https://env@host/1"
    assert build_options(dsn=None)["dsn"] == "https://env@host/1"
    assert build_options("https://arg@host/2")["dsn"] == "https://arg@host/2"
    assert build_options(dsn="")["dsn"] == ""  # explicitly disabled


def test_malformed_sentry_dsn_env_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://env@host/notanumber")
    with pytest.raises(BadDsn, match=r"Invalid project id.*SENTRY_DSN"):
        build_options()


def test_empty_sentry_dsn_env_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "")
    assert build_options()["dsn"] == ""


def test_release_and_environment_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "env-release")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    options = build_options()
    assert (options["release"], options["environment"]) == ("env-release", "staging")
    options = build_options(release="arg", environment="dev")
    assert (options["release"], options["environment"]) == ("arg", "dev")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "")
    assert build_options()["environment"] == "production"


TRUTHY = ["1", "true", "True", "TRUE", "yes", "YES", "on", "y", "t"]
FALSY = ["0", "false", "no", "off", "", "2", "garbage", " 1 "]


@pytest.mark.parametrize("var", ["SENTRY_DEBUG", "SENTRY_KEEP_ALIVE"])
@pytest.mark.parametrize(
    ("value", "expected"), [(v, True) for v in TRUTHY] + [(v, False) for v in FALSY]
)
def test_flag_env_vars(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: bool
) -> None:
    option = "debug" if var == "SENTRY_DEBUG" else "keep_alive"
    monkeypatch.setenv(var, value)
    assert build_options()[option] is expected
    assert build_options(**{option: False})[option] is False
    assert build_options(**{option: True})[option] is True


def test_spotlight_env_is_stored_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_SPOTLIGHT", "http://localhost:9999/stream")
    assert build_options()["spotlight"] == "http://localhost:9999/stream"
    assert build_options(spotlight=False)["spotlight"] is False
    monkeypatch.setenv("SENTRY_SPOTLIGHT", "")
    assert build_options()["spotlight"] is None


def test_build_options_spawns_no_process_and_imports_nothing_heavy() -> None:
    code = (
        "import os, subprocess, sys, tripwire\n"
        "before = set(sys.modules)\n"
        "def boom(*a, **k): raise AssertionError('spawned a process')\n"
        "subprocess.Popen = boom; os.posix_spawn = boom; os.fork = boom\n"
        "from tripwire.options import build_options\n"
        "build_options('https://k@h/1')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('urllib3', 'ssl', 'asyncio', 'socket', 'difflib', 'importlib', 'subprocess')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- release detection --------------------------------------------------------------------


def git(cwd: pathlib.Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    env.pop("GIT_DIR", None)
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def make_repo(path: pathlib.Path, commits: int = 1) -> pathlib.Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for i in range(commits):
        git(path, "commit", "-q", "--allow-empty", "-m", f"c{i}")
    return path


@pytest.fixture
def repo(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_repo(tmp_path / "repo", commits=2)


def test_release_from_loose_ref_in_a_subdirectory(
    monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path
) -> None:
    assert (repo / ".git" / "refs" / "heads" / "main").is_file()
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert detect_release() == git(repo, "rev-parse", "HEAD")
    assert build_options()["release"] == git(repo, "rev-parse", "HEAD")


def test_release_from_packed_refs(monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path) -> None:
    git(repo, "tag", "-a", "v1", "-m", "tag")  # adds a peeled "^" line to packed-refs
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    monkeypatch.chdir(repo)
    assert detect_release() == git(repo, "rev-parse", "HEAD")


def test_release_from_detached_head(monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path) -> None:
    git(repo, "checkout", "-q", "HEAD~1")
    monkeypatch.chdir(repo)
    assert detect_release() == git(repo, "rev-parse", "HEAD")
    assert detect_release() != git(repo, "rev-parse", "main")


def test_release_from_worktree(
    monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(worktree))
    git(worktree, "commit", "-q", "--allow-empty", "-m", "on feature")
    assert (worktree / ".git").is_file()
    monkeypatch.chdir(worktree)
    expected = git(worktree, "rev-parse", "HEAD")
    assert expected != git(repo, "rev-parse", "HEAD")
    assert detect_release() == expected
    git(repo, "pack-refs", "--all")
    assert detect_release() == expected


def test_release_from_submodule(
    monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    library = make_repo(tmp_path / "library", commits=3)
    git(repo, "submodule", "add", "-q", str(library), "lib")
    submodule = repo / "lib"
    assert (submodule / ".git").read_text().startswith("gitdir: ../.git/modules/lib")
    monkeypatch.chdir(submodule)
    assert detect_release() == git(submodule, "rev-parse", "HEAD")
    assert detect_release() != git(repo, "rev-parse", "HEAD")


def test_release_from_git_dir_env(
    monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert detect_release() == git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "missing"))
    monkeypatch.chdir(repo)
    assert detect_release() is None


def test_no_release_outside_a_repository_or_on_an_unborn_branch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    assert detect_release() is None
    empty = make_repo(tmp_path / "empty", commits=0)
    monkeypatch.chdir(empty)
    assert detect_release() is None
    monkeypatch.setenv("HEROKU_SLUG_COMMIT", "abc")
    assert detect_release() == "abc"


def test_release_env_precedence(monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path) -> None:
    monkeypatch.chdir(repo)
    head = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("HEROKU_SLUG_COMMIT", "heroku")
    monkeypatch.setenv("GITHUB_SHA", "github")
    assert detect_release() == head  # the checkout beats platform variables
    monkeypatch.setenv("SENTRY_RELEASE", "explicit")
    assert detect_release() == "explicit"  # SENTRY_RELEASE beats the checkout
    assert build_options(release="arg")["release"] == "arg"


def test_platform_release_vars_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from tripwire._release import _RELEASE_ENV_AFTER_GIT, _RELEASE_ENV_EXTRA

    order = [*_RELEASE_ENV_AFTER_GIT, *_RELEASE_ENV_EXTRA]
    for var in order:
        monkeypatch.setenv(var, f"from-{var}")
    for var in order:
        assert detect_release() == f"from-{var}"
        monkeypatch.setenv(var, "")  # empty values are skipped
    assert detect_release() is None


def test_release_detection_matches_sentry_sdk(
    monkeypatch: pytest.MonkeyPatch, repo: pathlib.Path
) -> None:
    utils = pytest.importorskip("sentry_sdk.utils")
    from tripwire._release import _RELEASE_ENV_AFTER_GIT

    # Every platform variable sentry-sdk reads, alone, outside a repository.
    for var in ("SENTRY_RELEASE", *_RELEASE_ENV_AFTER_GIT):
        monkeypatch.setenv(var, f"v-{var}")
        assert detect_release() == utils.get_default_release() == f"v-{var}"
        monkeypatch.delenv(var)
    # sentry-sdk's order among them.
    for var in _RELEASE_ENV_AFTER_GIT:
        monkeypatch.setenv(var, f"v-{var}")
    assert detect_release() == utils.get_default_release()
    # Inside a repository the checkout wins over them.
    monkeypatch.chdir(repo)
    assert detect_release() == utils.get_default_release() == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"send_default_pii": True}, "send_default_pii option is deprecated"),
        ({"send_default_pii": False}, "send_default_pii option is deprecated"),
        ({"send_default_pii": True, "data_collection": {}}, "ignored when data_collection"),
        (
            {"send_default_pii": False, "_experiments": {"data_collection": {}}},
            "ignored when data_collection",
        ),
    ],
)
def test_send_default_pii_is_deprecated_as_in_sentry_sdk(
    options: dict[str, Any], message: str
) -> None:
    """sentry_sdk 2.75 warns whenever the option is given; so does tripwire, at the caller."""
    sentry_sdk = pytest.importorskip("sentry_sdk")
    with pytest.warns(DeprecationWarning) as theirs:
        sentry_sdk.Client(default_integrations=False, **options)
    assert [str(w.message) for w in theirs if "send_default_pii" in str(w.message)]
    with pytest.warns(DeprecationWarning, match=message) as ours:
        build_options(**options)
    assert [w.filename for w in ours] == [__file__]


def test_no_pii_warning_without_the_option() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_options(data_collection={"user_info": False})
        build_options()
