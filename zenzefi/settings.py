"""Settings for Zenzefi Gate, read from the environment (django-environ).

With no DATABASE_URL / REDIS_URL the project runs on its embedded default:
SQLite, a cache table in the same SQLite file and a file-system Celery broker,
so it starts on a bare machine. With them set it runs on PostgreSQL and Redis, which is the
production and test configuration. Every variable is listed in .env.example.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env (written by scripts/run) fills in what the environment leaves
# unset; ENV_FILE names another file, or none when empty (the tests).
_env_file = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    environ.Env.read_env(_env_file, overwrite=False)

PLACEHOLDER_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105  refused below unless DEBUG
SECRET_KEY = env("SECRET_KEY", default=PLACEHOLDER_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
if not DEBUG and SECRET_KEY == PLACEHOLDER_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development placeholder. Set SECRET_KEY (or DEBUG=true for local development)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
BACKEND_URL = env("BACKEND_URL", default="http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "wallet",
    "access",
    "proxy",
    "events",
    "notifications",
    "analytics",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "zenzefi.logging.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "zenzefi.ratelimit.AuthRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "zenzefi.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "zenzefi.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "zenzefi.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "zenzefi.asgi.application"
# What zenzefi/asgi.py routes ahead of Django, by dotted path (zenzefi imports no app): the proxy's raw ASGI app
# under its prefix (proxy.app.PREFIX, written once there), and the coroutines run at shutdown, in this order
# (the sessions' last byte counts, then the upstream pool; zenzefi's own Redis client closes after them).
PROXY_ASGI_APP = "proxy.app.proxy_app"
PROXY_ASGI_PREFIX = "proxy.app.PREFIX"
ASGI_SHUTDOWN_HOOKS = ["proxy.sessions.flush_bytes", "proxy.client.close"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "zenzefi.context_processors.demo",
            ],
        },
    },
]

# --- Storage -----------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A closed port fails at once, but a black-holed host would hold each request for the kernel's
# TCP timeout (minutes): bounded, requests answer 503 (zenzefi/database.py). libpq counts whole
# seconds, at least 2.
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=3)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the Celery worker write this one file at once (the
    # cache table below included). BEGIN IMMEDIATE takes the write lock up front
    # and waits for it (timeout, seconds) instead of failing "database is
    # locked" half-way; WAL lets readers go on while one process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
# A dead or frozen Redis costs a request at most these timeouts, once: then the
# circuit breaker (zenzefi/breaker.py) skips Redis for REDIS_BREAKER_SECONDS.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=0.2)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.2)
REDIS_BREAKER_SECONDS = env.float("REDIS_BREAKER_SECONDS", default=5.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "zg",
            # JSON, not pickle: the async proxy reads some keys straight from Redis.
            "OPTIONS": {
                "CLIENT_CLASS": "zenzefi.rediscache.GuardedClient",
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    # The embedded default: a cache table in the database (on SQLite, the same
    # file), created by `manage.py createcachetable` (scripts/run does it). It
    # must be shared by every process: the worker's health report, token
    # invalidations and session flushes have to reach the web, and the device
    # rule and rate limits must see the web's state. The database cache is
    # chosen over the file-based one because its add() is atomic (a unique
    # key in one transaction), which is what zenzefi.sharedcache builds its lock
    # on; the file cache's add() is check-then-write. MAX_ENTRIES is raised so
    # culling (which drops a third of the rows once full) never removes live
    # device sessions or rate-limit windows on a one-machine install.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "zenzefi_cache",
            "KEY_PREFIX": "zg",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }

# --- Auth ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrUsernameBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "home"

ACCESS_TOKEN_EXPIRE_MINUTES = env.int("ACCESS_TOKEN_EXPIRE_MINUTES", default=60)
REFRESH_TOKEN_EXPIRE_DAYS = env.int("REFRESH_TOKEN_EXPIRE_DAYS", default=7)

# --- Internationalisation ------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files ----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders, so a fresh checkout needs no collectstatic.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Security ------------------------------------------------------------------------
COOKIE_SECURE = env.bool("COOKIE_SECURE", default=False)
COOKIE_SAMESITE = env("COOKIE_SAMESITE", default="Lax")
SESSION_COOKIE_SECURE = COOKIE_SECURE
CSRF_COOKIE_SECURE = COOKIE_SECURE
SESSION_COOKIE_SAMESITE = COOKIE_SAMESITE
CSRF_COOKIE_SAMESITE = COOKIE_SAMESITE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Addresses (or networks) whose X-Forwarded-For is believed; none by default.
TRUSTED_PROXY_IPS = env.list("TRUSTED_PROXY_IPS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=["https://127.0.0.1:61000", "https://localhost:61000"])

# --- E-mail ------------------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Zenzefi Gate <noreply@localhost>")
# A mail server that does not answer fails the send (the notification task retries it) instead of hanging.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Request bodies (API JSON and portal forms; the proxy streams its own untouched): larger ones
# answer 413, counted as they arrive (zenzefi/bodylimit.py), so none is read whole first.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["zenzefi.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "zenzefi.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["zenzefi.ratelimit.UserTierThrottle"],
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "UPDATE_LAST_LOGIN": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Zenzefi Gate API",
    "DESCRIPTION": "Paid, time-limited access to Zenzefi: accounts, ZNC wallet, access tokens and the proxy.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ScopeEnum": "access.models.Scope",
        "TransactionTypeEnum": "wallet.models.Transaction.Kind",
        "PaymentStatusEnum": "wallet.models.Payment.Status",
        "GiftStatusEnum": "access.models.GiftStatus",
    },
}

# --- Rate limits (count/seconds) ------------------------------------------------------------
RATE_LIMIT_AUTH = env("RATE_LIMIT_AUTH", default="10/60")
RATE_LIMIT_LOGIN_FAILURES = env("RATE_LIMIT_LOGIN_FAILURES", default="5/900")
RATE_LIMIT_API = env("RATE_LIMIT_API", default="100/60")  # per user, tier "free"
RATE_LIMIT_API_PREMIUM = env("RATE_LIMIT_API_PREMIUM", default="500/60")  # "enterprise": User.api_limit_per_minute
# The self-serve Premium API tier (access.tiers): the price of one period, charged from the balance, renewed.
PREMIUM_PRICE_ZNC = Decimal(env.str("PREMIUM_PRICE_ZNC", default="10.00"))
PREMIUM_PERIOD_DAYS = env.int("PREMIUM_PERIOD_DAYS", default=30)
RATE_LIMIT_PROXY = env("RATE_LIMIT_PROXY", default="1000/60")
# Invalid access tokens per client IP on the proxy: over it, 429 before any token look-up.
RATE_LIMIT_PROXY_INVALID = env("RATE_LIMIT_PROXY_INVALID", default="30/60")
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)

# --- Product ----------------------------------------------------------------------------------
ZNC_TO_RUB_RATE = Decimal(env.str("ZNC_TO_RUB_RATE", default="10"))
TOKEN_PRICES = {
    1: Decimal(env.str("TOKEN_PRICE_1H", default="1.00")),
    12: Decimal(env.str("TOKEN_PRICE_12H", default="10.00")),
    24: Decimal(env.str("TOKEN_PRICE_24H", default="18.00")),
    168: Decimal(env.str("TOKEN_PRICE_7D", default="100.00")),
    720: Decimal(env.str("TOKEN_PRICE_30D", default="300.00")),
}
ZENZEFI_TARGET_URL = env("ZENZEFI_TARGET_URL", default="http://127.0.0.1:18090").rstrip("/")
# True when ZENZEFI_TARGET_URL is the project's fake Zenzefi (scripts/run starts it
# when no target is configured): the portal then says Zenzefi is simulated.
ZENZEFI_DEMO = env.bool("ZENZEFI_DEMO", default=False)
ZENZEFI_VERIFY_TLS = env.bool("ZENZEFI_VERIFY_TLS", default=True)
ZENZEFI_CA_BUNDLE = env("ZENZEFI_CA_BUNDLE", default="")
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=300)
SESSION_FLUSH_SECONDS = env.int("SESSION_FLUSH_SECONDS", default=10)  # usage figures are at most this old
PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", default="mock")
ENABLE_MOCK_PAYMENTS = env.bool("ENABLE_MOCK_PAYMENTS", default=False)

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Fan-out exchanges (the worker's remote control); kombu's default is ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Bounded waits on a dead broker. The socket timeout stays above the worker's
    # BRPOP poll (1 s). A web request publishes webhook tasks only while the Redis
    # breaker is closed (events.services._publish); the outbox scan sends the rest.
    CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "retry_on_timeout": True,
    }

# --- Logging ---------------------------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT", default="json")  # json | plain
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "zenzefi.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Our access lines replace these; httpx would log every upstream URL (with its query string).
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
    },
}

# The e-mail is unique case-insensitively (UniqueConstraint on Lower("email")),
# which this check cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# --- Payments -----------------------------------------------------------------------------------------
PAYMENT_MIN_ZNC = Decimal(env.str("PAYMENT_MIN_ZNC", default="1"))
PAYMENT_MAX_ZNC = Decimal(env.str("PAYMENT_MAX_ZNC", default="100000"))
# HMAC-SHA256 key of the generic webhook's X-Signature header.
PAYMENT_WEBHOOK_SECRET = env("PAYMENT_WEBHOOK_SECRET", default="")
# Hosts a payment's return_url may point at, besides BACKEND_URL's and ALLOWED_HOSTS.
PAYMENT_RETURN_HOSTS = env.list("PAYMENT_RETURN_HOSTS", default=[])
YOOKASSA_SHOP_ID = env("YOOKASSA_SHOP_ID", default="")
YOOKASSA_SECRET_KEY = env("YOOKASSA_SECRET_KEY", default="")
# Networks notifications may come from (CIDR); empty = no address check.
YOOKASSA_WEBHOOK_IPS = env.list("YOOKASSA_WEBHOOK_IPS", default=[])
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Which provider takes a top-up in which currency ("RUB=yookassa,USD=stripe,EUR=stripe"). With
# PAYMENT_PROVIDER=mock the mock takes every currency; YooKassa takes RUB only (wallet.currencies).
PAYMENT_PROVIDER_BY_CURRENCY = {
    currency.strip().upper(): provider.strip().lower()
    for currency, _eq, provider in (
        item.partition("=")
        for item in env.list("PAYMENT_PROVIDER_BY_CURRENCY", default=["RUB=yookassa", "USD=stripe", "EUR=stripe"])
    )
    if currency.strip() and provider.strip()
}

# --- Access tokens -------------------------------------------------------------------------------------
# Key material for encrypting token secrets at rest and for their lookup
# digest. Defaults to one derived from SECRET_KEY; set it to rotate SECRET_KEY
# without losing the tokens.
TOKEN_ENCRYPTION_KEY = env("TOKEN_ENCRYPTION_KEY", default="")
# How long validated token facts stay in the cache before the database is asked again.
TOKEN_CACHE_SECONDS = env.int("TOKEN_CACHE_SECONDS", default=300)
# How long a digest no token has is remembered as unknown (no query for it meanwhile).
TOKEN_UNKNOWN_CACHE_SECONDS = env.int("TOKEN_UNKNOWN_CACHE_SECONDS", default=60)
REFERRAL_BONUS_PERCENT = Decimal(env.str("REFERRAL_BONUS_PERCENT", default="10"))
REFERRAL_MIN_PURCHASE = Decimal(env.str("REFERRAL_MIN_PURCHASE", default="100"))

# --- Proxy ----------------------------------------------------------------------------------------------
PROXY_CONNECT_TIMEOUT = env.float("PROXY_CONNECT_TIMEOUT", default=5.0)
PROXY_READ_TIMEOUT = env.float("PROXY_READ_TIMEOUT", default=60.0)
PROXY_MAX_CONNECTIONS = env.int("PROXY_MAX_CONNECTIONS", default=200)
PROXY_MAX_KEEPALIVE = env.int("PROXY_MAX_KEEPALIVE", default=50)
# Header mode relays compressed answers as they came (chunked); true decodes them instead, as the reference did.
PROXY_DECODE_COMPRESSION = env.bool("PROXY_DECODE_COMPRESSION", default=False)
# The cookie that carries a token in browser mode (set by the portal's "Open Zenzefi").
PROXY_COOKIE = "zg_proxy"
PROXY_DEVICE_COOKIE = "zg_device"

CELERY_BEAT_SCHEDULE = {
    # Live counters reach the database this often: a Redis crash loses at most this much of them.
    "proxy-flush-sessions": {"task": "proxy.flush_sessions", "schedule": float(SESSION_FLUSH_SECONDS)},
    "access-expire-tokens": {"task": "access.expire_tokens", "schedule": 300.0},
    "access-renew-tokens": {"task": "access.renew_tokens", "schedule": 300.0},
    "access-renew-tiers": {"task": "access.renew_tiers", "schedule": 300.0},
    "accounts-prune-audit": {"task": "accounts.prune_audit", "schedule": crontab(hour=3, minute=0)},
    "accounts-replay-cache-repairs": {"task": "accounts.replay_cache_repairs", "schedule": 30.0},
}
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# --- Gifts ----------------------------------------------------------------------------------------------
GIFT_CLAIM_DAYS = env.int("GIFT_CLAIM_DAYS", default=30)  # unclaimed after this: back to the sender
GIFT_MAX_PER_DAY = env.int("GIFT_MAX_PER_DAY", default=10)  # per sender, rolling 24 hours
GIFT_MAX_PENDING = env.int("GIFT_MAX_PENDING", default=20)  # per sender, at once
# Claim-code lookups (preview, accept, decline) per client IP, as count/seconds.
RATE_LIMIT_GIFT_CLAIM = env("RATE_LIMIT_GIFT_CLAIM", default="20/60")
CELERY_BEAT_SCHEDULE["access-expire-gifts"] = {"task": "access.expire_gifts", "schedule": 600.0}

# --- Outgoing webhooks (events) --------------------------------------------------------------------------
# Plain http targets (tests, a receiver on the same private network); production wants https.
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
# Targets on loopback, private, link-local or multicast addresses are refused (SSRF) unless this is true.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
WEBHOOKS_MAX_ENDPOINTS = env.int("WEBHOOKS_MAX_ENDPOINTS", default=10)
WEBHOOKS_RETENTION_DAYS = env.int("WEBHOOKS_RETENTION_DAYS", default=30)
WEBHOOKS_DISABLE_AFTER_DAYS = env.int("WEBHOOKS_DISABLE_AFTER_DAYS", default=5)
WEBHOOKS_DISABLE_AFTER_EXHAUSTED = env.int("WEBHOOKS_DISABLE_AFTER_EXHAUSTED", default=10)
CELERY_BEAT_SCHEDULE["events-outbox-scan"] = {"task": "events.outbox_scan", "schedule": 15.0}
CELERY_BEAT_SCHEDULE["events-prune"] = {"task": "events.prune", "schedule": crontab(hour=3, minute=30)}

# --- Notifications ---------------------------------------------------------------------------------------
# balance_low is sent when a debit takes the balance below this (ZNC).
LOW_BALANCE_ZNC = Decimal(env.str("LOW_BALANCE_ZNC", default="10"))
# Notification e-mails per user per UTC day; renewal_failed is sent past it.
NOTIFY_EMAIL_PER_DAY = env.int("NOTIFY_EMAIL_PER_DAY", default=5)
CELERY_BEAT_SCHEDULE["notifications-scan"] = {"task": "notifications.scan", "schedule": 60.0}

# --- Health -----------------------------------------------------------------------------------------------
HEALTH_CHECK_INTERVAL = env.int("HEALTH_CHECK_INTERVAL", default=50)
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=5.0)
CELERY_BEAT_SCHEDULE["health-check"] = {"task": "zenzefi.health_check", "schedule": float(HEALTH_CHECK_INTERVAL)}

# --- Metrics ----------------------------------------------------------------------------------------------
# When set, /metrics wants "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The Celery worker's PROMETHEUS_MULTIPROC_DIR on this host: /metrics adds its counts (webhook deliveries, beat tasks).
PROMETHEUS_WORKER_DIR = env("PROMETHEUS_WORKER_DIR", default="")
