"""reflib settings: one module, configured by environment variables.

With nothing set, reflib runs *embedded*: SQLite, the in-memory channel layer, Celery tasks run
eagerly in-process, e-mail printed to the console, DEBUG on. Setting ``DATABASE_URL``,
``REDIS_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DEBUG=0`` and the e-mail variables gives a
production configuration. docs/configuration.md lists every variable.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from reflib.env import env_bool, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("REFLIB_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "reflib-embedded-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
if not DEBUG and (
    SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")
# Old keys still accepted for signatures (sessions, password resets) while a new key rolls out.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# The public address of this installation, used in e-mailed links and the widget snippet.
REFLIB_BASE_URL = env_str("REFLIB_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "crispy_forms",
    "crispy_bootstrap5",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "reflib",
    "staffing",
    "chat",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "reflib.urls"
WSGI_APPLICATION = "reflib.wsgi.application"
ASGI_APPLICATION = "reflib.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

_DATABASE_URL = env_str("DATABASE_URL", "")
if _DATABASE_URL:
    try:
        _database = dj_database_url.parse(_DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if not _database.get("ENGINE"):
        raise ImproperlyConfigured("DATABASE_URL names an unknown database scheme")
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "reflib.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
# Live-server tests run real daphne processes against the test database, so that database must
# be a file everyone can open, not SQLite's private in-memory one.
_database["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")} if not _DATABASE_URL else {}
DATABASES = {"default": _database}
# Threads (each with its own database connection) that run the chat sockets' queries in one
# daphne process on PostgreSQL; SQLite uses one thread. See docs/configuration.md.
REFLIB_DB_THREADS = env_int("REFLIB_DB_THREADS", 2, minimum=1)
# Connections of the async pool that stores chat messages from the event loop on PostgreSQL
# (chat.services.fast_path).
REFLIB_DB_ASYNC_CONNECTIONS = env_int("REFLIB_DB_ASYNC_CONNECTIONS", 4, minimum=1)
# Back-pressure: while a daphne process's event loop, or its messages waiting for a database
# connection, run this far behind, new chat messages are refused busy (retry in 1 s) instead of
# queueing. See docs/configuration.md.
REFLIB_OVERLOAD_LAG_MS = env_int("REFLIB_OVERLOAD_LAG_MS", 1000, minimum=20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker -------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
# A group member over capacity silently loses notifications; the database replay repairs that,
# but a generous capacity keeps it rare. group_expiry stays above daphne's websocket timeout.
CHANNEL_CAPACITY = env_int("REFLIB_CHANNEL_CAPACITY", 1000, minimum=100)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults to a 5 s socket timeout, which cuts the layer's 5 s
                # blocking receive (the socket closes with 1011), and to a 100-connection pool
                # that refuses the 101st concurrent send under load.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 30,
                        "max_connections": env_int(
                            "REFLIB_REDIS_MAX_CONNECTIONS", 10_000, minimum=10
                        ),
                    }
                ],
                "capacity": CHANNEL_CAPACITY,
                "expiry": 60,
                "group_expiry": 86400,
                "prefix": env_str("REFLIB_CHANNEL_PREFIX", "reflib"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("REFLIB_CACHE_PREFIX", "reflib"),
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 60},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that died comes back after this long (acks late); every task is
# idempotent, and ETAs are kept shorter than it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("REFLIB_TASK_VISIBILITY_TIMEOUT", 3600, minimum=5)
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The periodic schedule lives in the database (django-celery-beat, shown in the admin); each
# app declares its jobs and `migrate` creates the missing ones (reflib/jobs.py). The sweep's
# interval here is only its first value; afterwards the admin is the place to change it.
REFLIB_SWEEP_SECONDS = env_int("REFLIB_SWEEP_SECONDS", 5, minimum=1)
# Each job run is recorded (JobRun, in the admin) and kept this many days.
REFLIB_JOB_RUN_DAYS = env_int("REFLIB_JOB_RUN_DAYS", 14, minimum=1)
# A librarian still available when their shift ends is set away this long after the end,
# unless they said at the desk that they stay.
REFLIB_SHIFT_END_GRACE_SECONDS = env_int("REFLIB_SHIFT_END_GRACE_SECONDS", 600, minimum=0)

# --- E-mail ----------------------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one of them")
EMAIL_TIMEOUT = 20
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "reflib <reflib@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- Security ----------------------------------------------------------------------------------

# HTTPS-only settings default on in production. REFLIB_HTTPS=0 runs production mode on plain
# HTTP (loopback, or behind a private TLS-terminating proxy that does not set the header).
REFLIB_HTTPS = env_bool("REFLIB_HTTPS", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = REFLIB_HTTPS
SESSION_COOKIE_SECURE = REFLIB_HTTPS
CSRF_COOKIE_SECURE = REFLIB_HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if REFLIB_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", REFLIB_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", REFLIB_HTTPS)
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Django's database sessions, read with one written statement (reflib/sessions.py).
SESSION_ENGINE = "reflib.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
if not REFLIB_HTTPS:
    # Plain HTTP was chosen explicitly (REFLIB_HTTPS=0): the HTTPS-only deployment checks do
    # not apply to it. Documented in docs/configuration.md.
    SILENCED_SYSTEM_CHECKS = [
        "security.W004",  # HSTS
        "security.W008",  # SSL redirect
        "security.W012",  # secure session cookie
        "security.W016",  # secure CSRF cookie
    ]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/desk/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Internationalisation and time ---------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files -------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("REFLIB_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("REFLIB_MEDIA_ROOT", str(DATA_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static folders when collectstatic has not run (embedded mode).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "reflib patron API",
    "DESCRIPTION": "The HTTP half of the reflib chat protocol, version 1 (docs/protocol.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Chat limits (docs/configuration.md) -----------------------------------------------------

REFLIB_RATE_SESSION_START = env_rate("REFLIB_RATE_SESSION_START", "60/600")
REFLIB_RATE_MESSAGES = env_rate("REFLIB_RATE_MESSAGES", "30/10")

# --- Abuse limits (docs/configuration.md, "Abuse limits") ------------------------------------
# Whether this is the embedded demo (no DATABASE_URL, no REDIS_URL): seed_demo refuses otherwise.
REFLIB_EMBEDDED = not _DATABASE_URL and not REDIS_URL
# Per library, new chats and tickets together (the per-address limit above counts an IPv6 /64).
REFLIB_RATE_SESSION_START_LIBRARY = env_rate("REFLIB_RATE_SESSION_START_LIBRARY", "600/600")
# Messages from one address (an IPv6 /64), whatever the token.
REFLIB_RATE_MESSAGES_ADDRESS = env_rate("REFLIB_RATE_MESSAGES_ADDRESS", "120/10")
# Every frame of one socket (typing, read, end, checkin_answer, ping, ...).
REFLIB_RATE_FRAMES = env_rate("REFLIB_RATE_FRAMES", "60/10")
REFLIB_MAX_SOCKETS_PER_TOKEN = env_int("REFLIB_MAX_SOCKETS_PER_TOKEN", 5, minimum=1)
REFLIB_MAX_SOCKETS_PER_ADDRESS = env_int("REFLIB_MAX_SOCKETS_PER_ADDRESS", 50, minimum=1)
# Items of the desk's queue frame (the oldest first); "total" says how many are waiting.
REFLIB_DESK_QUEUE_ITEMS = env_int("REFLIB_DESK_QUEUE_ITEMS", 50, minimum=1)
# E-mails to patrons (ticket receipts, transcripts): per recipient and for the installation.
REFLIB_RATE_MAIL_RECIPIENT = env_rate("REFLIB_RATE_MAIL_RECIPIENT", "5/3600")
REFLIB_RATE_MAIL_TOTAL = env_rate("REFLIB_RATE_MAIL_TOTAL", "500/3600")
# Failed and attempted logins, per username and per address.
REFLIB_RATE_LOGIN_USERNAME = env_rate("REFLIB_RATE_LOGIN_USERNAME", "10/900")
REFLIB_RATE_LOGIN_ADDRESS = env_rate("REFLIB_RATE_LOGIN_ADDRESS", "50/900")
REFLIB_UPLOAD_MAX_BYTES = env_int("REFLIB_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# How long after a conversation ends its patron token still opens it for reading (a shared
# public computer: the next person must not read the last chat).
REFLIB_PATRON_TOKEN_WINDOW_S = env_int("REFLIB_PATRON_TOKEN_WINDOW_S", 900, minimum=0)

# Screen sharing (docs/deployment.md "Screen sharing across networks"): the STUN and TURN
# servers browsers may use, and coturn's shared secret for short-lived TURN credentials.
REFLIB_RATE_SHARE_SIGNALS = env_rate("REFLIB_RATE_SHARE_SIGNALS", "60/60")
REFLIB_ICE_SERVERS = env_list("REFLIB_ICE_SERVERS", [])
for _ice_url in REFLIB_ICE_SERVERS:
    if not _ice_url.startswith(("stun:", "stuns:", "turn:", "turns:")):
        raise ImproperlyConfigured(
            f"REFLIB_ICE_SERVERS holds stun:, stuns:, turn: or turns: URLs; got {_ice_url!r}"
        )
REFLIB_TURN_SECRET = env_str("REFLIB_TURN_SECRET", "")
REFLIB_TURN_TTL_S = env_int("REFLIB_TURN_TTL_S", 3600, minimum=60)
if any(url.startswith("turn") for url in REFLIB_ICE_SERVERS) and not REFLIB_TURN_SECRET:
    raise ImproperlyConfigured("REFLIB_ICE_SERVERS names a TURN server: set REFLIB_TURN_SECRET")
# "relay": the video always goes through the TURN server, so that neither side's browser learns
# the other's IP address.
REFLIB_ICE_TRANSPORT_POLICY = env_str("REFLIB_ICE_TRANSPORT_POLICY", "all")
if REFLIB_ICE_TRANSPORT_POLICY not in {"all", "relay"}:
    raise ImproperlyConfigured("REFLIB_ICE_TRANSPORT_POLICY must be all or relay")
if REFLIB_ICE_TRANSPORT_POLICY == "relay" and not REFLIB_TURN_SECRET:
    raise ImproperlyConfigured("REFLIB_ICE_TRANSPORT_POLICY=relay needs a TURN server")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL; got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No secrets or personal data in logs (reflib/logfilter.py); SQL with its parameters is
    # never logged, whatever LOG_LEVEL says.
    "filters": {"redact": {"()": "reflib.logfilter.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
