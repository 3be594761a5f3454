#!/usr/bin/env bash
# The one-command demo (called by `make demo` once .venv is installed):
#   migrate → demo users (logins printed) → demo exams (phantom DICOM + ingest, when those parts
#   exist) → collectstatic → a Celery worker (real one on local Redis, else tasks in-process) →
#   the web server on http://127.0.0.1:8000 (DEMO_PORT to change). Ctrl-C stops both.
# Without DATABASE_URL the data lives in var/demo.sqlite3; `make clean-demo` forgets it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN=.venv/bin
PORT="${DEMO_PORT:-8000}"
export SONOREVIEW_DEMO=1
export DJANGO_SETTINGS_MODULE=webapp.settings.base
mkdir -p var/log

say() { printf '\n== %s\n' "$*"; }
manage() { "$VENV_BIN/python" manage.py "$@"; }

# A free port first: a clash would only show up after all the set-up work.
if "$VENV_BIN/python" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
  echo "demo: something already listens on 127.0.0.1:$PORT; stop it or run DEMO_PORT=8001 make demo" >&2
  exit 1
fi

# Broker: a real worker on local Redis when there is one (started if installed), else in-process.
redis_up() { "$VENV_BIN/python" -c "import redis; redis.Redis(host='127.0.0.1', port=6379, socket_connect_timeout=1).ping()" 2>/dev/null; }
if [ -z "${CELERY_BROKER_URL:-}" ]; then
  if ! redis_up && command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --logfile "$PWD/var/log/redis.log" >/dev/null || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.25; done
  fi
  if redis_up; then
    export CELERY_BROKER_URL=redis://127.0.0.1:6379/0
  fi
fi

say "Database"
if [ -n "${DATABASE_URL:-}" ]; then echo "DATABASE_URL is set: using it"; else echo "SQLite: var/demo.sqlite3"; fi
manage migrate --noinput -v 0

say "Demo users"
manage create_demo_users

say "Demo exams"
already=$(manage shell -v 0 -c "from webapp.exams.models import Study; print(Study.objects.exists())" 2>/dev/null | tail -n 1 || echo False)
if [ "$already" = "True" ]; then
  echo "exams already loaded (make clean-demo starts afresh)"
else
  "$VENV_BIN/python" -m inference.phantom --out var/demo-dicom --seed 0
  # Only the exam folders: the phantom's manifest.json (its ground truth) is not an exam. The
  # mid-trimester exam is the trainee's, so the supervisor's grading queue has work in the demo.
  mapfile -t exam_dirs < <(find var/demo-dicom -mindepth 1 -maxdepth 1 -type d ! -name '*mid_trimester*' | sort)
  manage ingest_dicom "${exam_dirs[@]}" --user sono \
    || echo "note: ingest_dicom reported problems (above); the site runs with what was stored"
  manage ingest_dicom var/demo-dicom/*mid_trimester* --user trainee \
    || echo "note: ingest_dicom reported problems (above); the site runs with what was stored"
fi

say "Static files"
manage collectstatic --noinput -v 0

WORKER_PID=""
cleanup() {
  if [ -n "$WORKER_PID" ] && kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID" 2>/dev/null || true
    wait "$WORKER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Worker"
if [ -n "${CELERY_BROKER_URL:-}" ]; then
  # -B: the periodic tasks (beat) run inside this one demo worker.
  OMP_NUM_THREADS=1 "$VENV_BIN/celery" -A webapp worker -Q default,inference --pool=solo \
    -n "demo@%h" -B --schedule var/celerybeat-schedule --loglevel=INFO \
    --logfile var/log/worker.log &
  WORKER_PID=$!
  echo "Celery worker on $CELERY_BROKER_URL (queues default, inference), log: var/log/worker.log"
else
  echo "No Redis found: tasks run inside the web process (install redis-server for a real worker)"
fi

say "sonoreview is starting on http://127.0.0.1:$PORT/  (health: /health/, Ctrl-C to stop)"
# In-process mode runs model inference inside the request that queued it: allow it time.
"$VENV_BIN/gunicorn" --preload --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --timeout "$([ -n "${CELERY_BROKER_URL:-}" ] && echo 60 || echo 600)" \
  --access-logfile - --error-logfile - webapp.wsgi:application
