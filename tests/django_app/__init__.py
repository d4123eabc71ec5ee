"""A small Django project for the Django integration tests (settings in `configure`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def settings_dict(**overrides: Any) -> dict[str, Any]:
    """The project's settings, for `django.conf.settings.configure`."""
    found: dict[str, Any] = {
        "DEBUG": False,
        "SECRET_KEY": "not-a-secret",
        "ALLOWED_HOSTS": ["localhost", "testserver", "127.0.0.1"],
        "ROOT_URLCONF": "django_app.urls",
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        "MIDDLEWARE": [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                # One database shared by the threads of the process.
                "NAME": "file:tripwire_django?mode=memory&cache=shared",
                "TEST": {"NAME": "file:tripwire_django?mode=memory&cache=shared"},
            }
        },
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [str(HERE / "templates")],
                # Template errors carry their source line (sentry_sdk's template frame).
                "OPTIONS": {"debug": True},
            }
        ],
        "USE_TZ": True,
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
    }
    found.update(overrides)
    return found


def configure(**overrides: Any) -> None:
    """Configure Django for this project (once per process) and create its tables."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**settings_dict(**overrides))
        django.setup()
        from django.core.management import call_command

        call_command("migrate", run_syncdb=True, verbosity=0)
