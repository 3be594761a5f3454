# Image for the web and worker services of docker-compose.yml (CPU build).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings.base

# dcmtk for DICOM checks at ingest; curl for health checks; pango, harfbuzz and DejaVu fonts for
# the PDF reports (WeasyPrint).
RUN apt-get update \
 && apt-get install -y --no-install-recommends dcmtk curl \
    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU torch from PyTorch's CPU index: a plain `pip install torch` pulls multi-GB CUDA wheels.
# For a GPU worker image, install the matching CUDA build of torch==2.13.0 here instead.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY webapp ./webapp
COPY inference ./inference
COPY static ./static
COPY manage.py ./
RUN pip install .

# Static files are collected at build time (demo mode satisfies the settings without secrets).
RUN SONOREVIEW_DEMO=1 SONOREVIEW_VAR_DIR=/tmp/build-var STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput -v 0

ENV STATIC_ROOT=/app/staticfiles
RUN useradd --create-home --uid 1000 sonoreview && mkdir -p /data/media \
 && chown -R sonoreview /data /app
USER sonoreview
EXPOSE 8000
CMD ["gunicorn", "--preload", "--bind=0.0.0.0:8000", "webapp.wsgi:application"]
