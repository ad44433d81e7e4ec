"""Settings behave as SPEC §4 says: embedded default, production refusal, check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "SECRET_KEY": "x7Qp9-production-like-secret-key-with-enough-entropy-2b81f0c3",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "gate.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://gate.example.com",
    "BACKEND_URL": "https://gate.example.com",
    "COOKIE_SECURE": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "EMAIL_URL": "smtp+tls://mailer:mail-password@mail.example.com:587",
}


def run(code_or_args, env_overrides, *, drop=()):
    drop = {*drop, "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"ENV_FILE": "", **env_overrides})
    args = code_or_args if isinstance(code_or_args, list) else [sys.executable, "-c", code_or_args]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


SHOW = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='zenzefi.settings'; django.setup();"
    "from django.conf import settings as s;"
    "print(s.DATABASES['default']['ENGINE']); print(s.CACHES['default']['BACKEND']); print(s.CELERY_BROKER_URL)"
)


def test_embedded_default_needs_no_server():
    result = run(SHOW, {"DEBUG": "true"}, drop=("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.db.DatabaseCache",
        "filesystem://",
    ]


def test_service_urls_select_postgres_and_redis():
    result = run(
        SHOW,
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3"},
        drop=("CELERY_BROKER_URL",),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "django_redis.cache.RedisCache",
        "redis://127.0.0.1:6379/3",
    ]


def test_production_refuses_the_placeholder_secret_key():
    result = run(SHOW, {"DEBUG": "false"}, drop=("SECRET_KEY",))

    assert result.returncode != 0
    assert "SECRET_KEY is the development placeholder" in result.stderr


def test_check_deploy_is_clean_for_production_like_env():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        PRODUCTION_ENV,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_refuses_the_console_mail_backend():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {**PRODUCTION_ENV, "EMAIL_URL": "consolemail://"},
    )

    assert result.returncode != 0
    assert "accounts.W001" in result.stderr + result.stdout
    assert "password-reset links would be written to the server log" in result.stderr + result.stdout


def test_console_mail_backend_is_fine_for_development():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy"],
        {**PRODUCTION_ENV, "EMAIL_URL": "consolemail://", "DEBUG": "true"},
    )

    assert "accounts.W001" not in result.stderr + result.stdout


def test_openapi_schema_builds_without_warnings(tmp_path):
    result = run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml")],
        PRODUCTION_ENV,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/v1/currency/transactions" in (tmp_path / "s.yml").read_text()
