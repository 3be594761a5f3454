"""sonoreview settings, read from the environment.

Production: DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis), SECRET_KEY and ALLOWED_HOSTS are
required; MEDIA_ROOT and the PACS settings come from the environment. Demo (SONOREVIEW_DEMO=1) or
development (DJANGO_DEBUG=1): with no DATABASE_URL the site uses a SQLite file under ``var/``, and
with no CELERY_BROKER_URL tasks run in-process, so one command can show the product on a bare
machine. Each mistake raises ConfigurationError with one sentence (README lists every variable). Tests use ``webapp.settings.test`` (real PostgreSQL and Redis).
"""

from __future__ import annotations

from pathlib import Path

from webapp.settings.env import (
    ConfigurationError,
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_broker_url,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("SONOREVIEW_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", default=False)
# Demo mode: the one-command demo on a bare machine (SQLite fallback, in-process tasks, a fixed
# insecure key, plain-HTTP cookies). Production is neither demo nor debug and must name every
# server and secret explicitly, so a forgotten variable stops start-up instead of degrading.
DEMO = env_bool("SONOREVIEW_DEMO", default=False)
PRODUCTION = not (DEBUG or DEMO)
_PRODUCTION_HINT = "in production mode (set SONOREVIEW_DEMO=1 for a local demo)"

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if PRODUCTION:
        raise ConfigurationError(f"SECRET_KEY is not set: it is required {_PRODUCTION_HINT}")
    SECRET_KEY = "demo-only-insecure-key-do-not-use-in-production"
# Old keys after a rotation: sessions signed with them stay valid and PACS secrets sealed with
# them (webapp/core/secrets.py) still open.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if not ALLOWED_HOSTS:
    # Django would answer every request with 400; say so at start-up instead.
    raise ConfigurationError(
        "ALLOWED_HOSTS is not set: list the host names the site is served as, comma-separated "
        "(e.g. ALLOWED_HOSTS=review.example.org)"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "webapp.core",
    "webapp.accounts",
    "webapp.exams",
    "webapp.analysis",
    "webapp.review",
    "webapp.reports",
    "webapp.teaching",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.core.context_processors.navigation",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": parse_database_url(_database_url).as_django()}
elif PRODUCTION:
    raise ConfigurationError(
        f"DATABASE_URL is not set: a PostgreSQL URL is required {_PRODUCTION_HINT}"
    )
else:
    # Demo fallback only; production and tests always name a PostgreSQL server.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "demo.sqlite3",
            # The demo's web threads and worker share one file: wait for a lock, don't fail.
            "OPTIONS": {"timeout": 20},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
if not PRODUCTION:
    # Demo and development serve static files straight from the sources as well (WhiteNoise
    # finders), so a forgotten collectstatic never leaves a page unstyled.
    WHITENOISE_USE_FINDERS = True
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_MIMETYPES = {".wasm": "application/wasm", ".mjs": "text/javascript"}

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Upload limits: DICOM cines are large; per-file limits are enforced by the ingest service.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

# --- Celery -----------------------------------------------------------------------------------
_broker_url = env_str("CELERY_BROKER_URL")
CELERY_BROKER_URL = parse_broker_url(_broker_url) if _broker_url else None
_result_backend = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_RESULT_BACKEND = (
    parse_broker_url(_result_backend, variable="CELERY_RESULT_BACKEND") if _result_backend else None
)
if CELERY_BROKER_URL is None and PRODUCTION:
    raise ConfigurationError(
        f"CELERY_BROKER_URL is not set: a Redis URL is required {_PRODUCTION_HINT}"
    )
# Without a broker (demo) tasks run in-process; production and tests always name Redis.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# Celery beat (``celery -A webapp beat``): re-queue exams whose analysis message was lost (broker
# down when they arrived, a vanished message); see webapp.analysis.services.sweep_stuck.
CELERY_BEAT_SCHEDULE = {
    "analysis-sweep-stuck-exams": {
        "task": "webapp.analysis.tasks.sweep_stuck_exams",
        "schedule": 300.0,
        "args": (10.0,),
        "options": {"queue": "default"},
    },
    # Reports of signed exams and their PACS write-back whose message was lost (see
    # webapp.reports.services.sweep; the write-back backoff itself is scheduled per object).
    "reports-send-pending": {
        "task": "webapp.reports.tasks.send_pending_reports",
        "schedule": 300.0,
        "options": {"queue": "default"},
    },
}

# --- PACS and DICOM -----------------------------------------------------------------------------
PACS_DICOMWEB_URL = env_str("PACS_DICOMWEB_URL")  # e.g. http://pacs:8042/dicom-web
if PACS_DICOMWEB_URL and not PACS_DICOMWEB_URL.startswith(("http://", "https://")):
    raise ConfigurationError(
        f"PACS_DICOMWEB_URL {PACS_DICOMWEB_URL!r} is not an http(s) URL "
        "(e.g. http://pacs:8042/dicom-web)"
    )
DICOM_AE_TITLE = env_str("DICOM_AE_TITLE", "SONOREVIEW") or "SONOREVIEW"
if len(DICOM_AE_TITLE) > 16:
    raise ConfigurationError(f"DICOM_AE_TITLE {DICOM_AE_TITLE!r} is longer than 16 characters")
DICOM_PORT = env_int("DICOM_PORT", 11112, minimum=1, maximum=65535)

# --- Start-up and health checks -----------------------------------------------------------------
# Seconds each reachability probe (database, broker, worker) may take before it counts as down.
HEALTH_CHECK_TIMEOUT = float(env_int("HEALTH_CHECK_TIMEOUT", 3, minimum=1, maximum=60))

# --- Security for production ------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Production sits behind TLS; the demo and development servers speak plain HTTP on loopback.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
