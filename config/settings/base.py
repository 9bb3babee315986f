"""Settings shared by every environment. Everything deployment-specific comes from the environment
(django-environ); with nothing set, the embedded defaults run on one machine: SQLite and local
files under var/, and a Celery broker on the filesystem that needs no server."""

import os
import secrets
import time
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

from mlcore.fusion import DEFAULT_TEXT_WEIGHT, DEFAULT_VOICE_WEIGHT

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional local overrides

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "static").mkdir(exist_ok=True)  # whitenoise warns when STATIC_ROOT is missing


def _kept_secret_key(path: Path) -> str:
    """A random key made once and kept in `path` (readable by this user only): with no
    DJANGO_SECRET_KEY set, sessions and signatures still rest on a secret nobody else knows.
    O_EXCL: of the web server and the worker starting together, one writes and both read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
    for _ in range(50):  # the other process may be between its create and its write
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it or set DJANGO_SECRET_KEY")


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _kept_secret_key(VAR_DIR / "secret_key")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.AdminConfig",  # django.contrib.admin with the product's site (config/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "videos",
    "quotas",
    "mlcore",
    "worker",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the CSRF check reads a form post's body (see the module).
    "videos.middleware.UploadSizeLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

# Content-Security-Policy (django-csp): scripts, styles, images and connections from this site
# only, so injected markup cannot run script. Style attributes stay allowed (`style-src-attr`:
# the share bars size themselves with `style="flex: ..."`; an attribute cannot run script).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL says otherwise (postgres://...) ---
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: opening one per request costs more than the status poll it serves.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth: our own user model (email login) + allauth ---
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
# Mail subjects name the product, not the host the request came to ("[127.0.0.1:8123] ...").
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Video Sentiment: "
LOGIN_REDIRECT_URL = "dashboard"
LOGIN_URL = "account_login"

# --- Email: console in dev; SMTP from EMAIL_URL in prod ---
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Video Sentiment <noreply@localhost>")

# --- Static and media files: local under var/ unless S3 is configured ---
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    # django-storages S3 backend; credentials from the AWS_* variables or the instance role.
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_FILE_OVERWRITE = False
    _media_backend = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    _media_backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_backend,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Celery: broker from CELERY_BROKER_URL (redis://...), else kombu's filesystem transport ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),  # fanout (remote control)
        "store_processed": False,
    }
else:
    # Above the hard time limit, or Redis redelivers an unacked long job while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 3600)
    }
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "inference", "webhooks")
# Callbacks wait on other people's servers: their own queue and worker, so analyses never queue
# behind them.
CELERY_TASK_ROUTES = {
    "worker.tasks.analyze_video": {"queue": "inference"},
    "worker.tasks.deliver_webhook": {"queue": "webhooks"},
}
CELERY_TASK_IGNORE_RESULT = True  # results live in our own tables
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process loads the model, Whisper and the face channel at start (worker_process_init:
# ~5 s, longer on a busy CPU); Celery's default 4 s wait would kill and respawn it forever.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=180.0)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Cache: Redis when one is configured (the API rate-limit counters live here, shared by all
# web processes), else files under var/cache/ (still shared by every process on this machine).
# CACHE_URL, then REDIS_URL, then a redis:// broker.
CACHE_URL = env.str("CACHE_URL", default="") or env.str("REDIS_URL", default="")
if not CACHE_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHE_URL = CELERY_BROKER_URL  # same server; keys are prefixed, never call cache.clear()
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="vs"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "EXCEPTION_HANDLER": "videos.api.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Requests per minute from the user's plan (quotas), counted in the cache above.
    "DEFAULT_THROTTLE_CLASSES": ["quotas.throttling.PlanRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Video Sentiment API",
    "DESCRIPTION": "Upload videos and poll emotion/sentiment analyses per utterance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets from the drf-spectacular-sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "",  # ours instead: templates/drf_spectacular/swagger_ui.html
    "REDOC_DIST": "SIDECAR",
}

# --- Analysis engine (mlcore) ---
WHISPER_MODEL = env.str("WHISPER_MODEL", default="")  # empty -> packaged tiny.en
# cpu, cuda or auto. CPU by default: PyPI's CTranslate2 needs CUDA 12 libraries (mlcore.transcribe).
WHISPER_DEVICE = env.str("WHISPER_DEVICE", default="cpu")
# The multilingual Whisper that identifies the spoken language and translates non-English speech
# to English for the language model (mlcore.language); empty -> no identification (all speech is
# taken to be English). ANALYSIS_TRANSLATE=false: non-English speech gets no language-model label.
WHISPER_LANGUAGE_MODEL = env.str("WHISPER_LANGUAGE_MODEL", default="base")
ANALYSIS_TRANSLATE = env.bool("ANALYSIS_TRANSLATE", default=True)
MODEL_CHECKPOINT = env.str("MODEL_CHECKPOINT", default="")  # empty -> shipped default model
# The face channel (pretrained expression classifier) and the voice channel (measured prosody);
# FUSION_FACE_WEIGHT is the face's weight in the `combined` label (mlcore.fusion; chosen, not fit).
ANALYSIS_FACE_CHANNEL = env.bool("ANALYSIS_FACE_CHANNEL", default=True)
# The face-expression classifier (mlcore.face_expression): "mobilenetv2-rafdb-fer" (the default,
# trained on RAF-DB + FER2013, research-use data: MODEL_CARD), "fer-mini-xception", or a path
# to a .pt file from `python -m training.face train`.
ANALYSIS_FACE_MODEL = env.str("ANALYSIS_FACE_MODEL", default="")  # empty -> the shipped default
ANALYSIS_VOICE_CHANNEL = env.bool("ANALYSIS_VOICE_CHANNEL", default=True)
# The voice-emotion model (mlcore.voice_emotion, weights derived from RAVDESS: CC BY-NC-SA 4.0):
# false keeps the voice channel to measured prosody, with no emotion read from the voice.
ANALYSIS_VOICE_EMOTION = env.bool("ANALYSIS_VOICE_EMOTION", default=True)
# Who speaks when (mlcore.speakers, CAM++ voice embeddings): false gives one unnamed stream.
ANALYSIS_SPEAKERS = env.bool("ANALYSIS_SPEAKERS", default=True)
FUSION_FACE_WEIGHT = env.float("FUSION_FACE_WEIGHT", default=0.5)
# The words' and the voice's weights in `combined`: defaults measured (mlcore.fusion, MODEL_CARD).
FUSION_TEXT_WEIGHT = env.float("FUSION_TEXT_WEIGHT", default=DEFAULT_TEXT_WEIGHT)
FUSION_VOICE_WEIGHT = env.float("FUSION_VOICE_WEIGHT", default=DEFAULT_VOICE_WEIGHT)

METRICS_TOKEN = env.str("METRICS_TOKEN", default="")  # set: /metrics wants "Bearer <token>"
# Without a token /metrics answers 403, unless opened explicitly (a scraper on a private network).
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # "json": one JSON object per line
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- Upload and analysis limits (checked before a job is queued) ---
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=500 * 1024 * 1024)
MAX_VIDEO_SECONDS = env.float("MAX_VIDEO_SECONDS", default=30 * 60)
MAX_VIDEO_WIDTH = env.int("MAX_VIDEO_WIDTH", default=3840)
MAX_VIDEO_HEIGHT = env.int("MAX_VIDEO_HEIGHT", default=2160)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # bigger bodies stream to temp files
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DIRECT_UPLOAD_EXPIRES_S = env.int("DIRECT_UPLOAD_EXPIRES_S", default=3600)
# Job execution (worker)
ANALYSIS_SOFT_TIME_LIMIT_S = env.int("ANALYSIS_SOFT_TIME_LIMIT_S", default=3600)
ANALYSIS_TIME_LIMIT_S = env.int("ANALYSIS_TIME_LIMIT_S", default=3900)
ANALYSIS_MAX_ATTEMPTS = env.int(
    "ANALYSIS_MAX_ATTEMPTS", default=5
)  # deliveries, incl. after worker loss
# A running job whose worker has not reported for this long is presumed dead (reaper, takeover).
ANALYSIS_HEARTBEAT_STALE_S = env.int("ANALYSIS_HEARTBEAT_STALE_S", default=600)
# A queued job still waiting after this long may have lost its message (broker restart): resend.
ANALYSIS_REQUEUE_AFTER_S = env.int("ANALYSIS_REQUEUE_AFTER_S", default=900)
WORKER_PRELOAD_MODEL = env.bool("WORKER_PRELOAD_MODEL", default=True)

# --- Webhooks: the signed POST to a job's callback_url when it ends (webhooks app) ---
# Loopback, private, link-local and reserved targets are refused unless this is on (tests, or a
# deployment whose integrators live on its own network).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=5.0)  # connect, and each read
# The whole request (connect, send, headers and body): a trickling receiver is cut off here.
WEBHOOK_DEADLINE_S = env.float("WEBHOOK_DEADLINE_S", default=10.0)
# The delivery task's limits are only a backstop behind that deadline (time to record the attempt).
WEBHOOK_TASK_SOFT_TIME_LIMIT_S = WEBHOOK_DEADLINE_S + 20
WEBHOOK_TASK_TIME_LIMIT_S = WEBHOOK_DEADLINE_S + 30
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
# Backoff: base x 2^(attempt-1), capped: 30 s, 1, 2, 4, 8 min by default.
WEBHOOK_RETRY_BASE_S = env.float("WEBHOOK_RETRY_BASE_S", default=30.0)
WEBHOOK_RETRY_MAX_S = env.float("WEBHOOK_RETRY_MAX_S", default=3600.0)
# The site's public address (e.g. https://vs.example.org): callbacks then carry absolute links.
SITE_URL = env.str("SITE_URL", default="").rstrip("/")
