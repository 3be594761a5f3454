#!/usr/bin/env bash
# Make sure what the test suite talks to is installed and running on loopback:
#   PostgreSQL (127.0.0.1:5432) with the test role, Redis (127.0.0.1:6379), and the Debian
#   packages the tests drive: orthanc + orthanc-dicomweb (started per test session by the
#   Orthanc fixture), dcmtk, dicom3tools, chromium, poppler-utils.
# Idempotent and quiet when everything is already there; installs missing packages with apt
# (as root, or through passwordless sudo) and starts stopped servers. Exit 1 with one line on
# what could not be done.
set -euo pipefail

PACKAGES=(postgresql redis-server orthanc orthanc-dicomweb dcmtk dicom3tools chromium poppler-utils
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)  # pango etc.: WeasyPrint PDFs
TEST_ROLE="${SONOREVIEW_TEST_DB_ROLE:-sonoreview}"
TEST_PASSWORD="${SONOREVIEW_TEST_DB_PASSWORD:-sonoreview}"
PG_PORT=5432
REDIS_PORT=6379

say() { echo "ensure-services: $*"; }
die() { echo "ensure-services: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  AS_ROOT=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  AS_ROOT=(sudo -n)
else
  AS_ROOT=(false)
fi
as_root() { [ "${AS_ROOT[0]:-}" != false ] || die "need root or passwordless sudo to: $*"; "${AS_ROOT[@]}" "$@"; }
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@";
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@";
  else sudo -n -u postgres "$@"; fi
}

# --- Debian packages -------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null
  # policy-rc.d keeps package scripts from starting services in containers; we start them below.
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL ------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
if ! pg_ready; then
  cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1" "$2; exit}')
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    [ -n "$version" ] || die "PostgreSQL is installed but no server version found in /usr/lib/postgresql"
    say "creating PostgreSQL $version cluster 'main' on port $PG_PORT"
    as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    cluster="$version main"
  fi
  say "starting PostgreSQL cluster $cluster"
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
  for _ in $(seq 1 60); do pg_ready && break; sleep 0.5; done
  pg_ready || die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT (see /var/log/postgresql/)"
fi

# The test role: a password login with CREATEDB (pytest-django creates test_sonoreview), so it
# works under Debian's default scram-sha-256 loopback rule as well as under trust.
if ! PGPASSWORD="$TEST_PASSWORD" PGCONNECT_TIMEOUT=5 psql -qtAX -h 127.0.0.1 -p "$PG_PORT" \
      -U "$TEST_ROLE" -d postgres -c "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user" 2>/dev/null \
      | grep -qx t; then
  say "creating PostgreSQL role $TEST_ROLE (LOGIN CREATEDB)"
  as_postgres psql -qX -p "$PG_PORT" -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL || die "could not create the PostgreSQL role $TEST_ROLE"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$TEST_ROLE') THEN
    CREATE ROLE "$TEST_ROLE" LOGIN CREATEDB PASSWORD '$TEST_PASSWORD';
  ELSE
    ALTER ROLE "$TEST_ROLE" LOGIN CREATEDB PASSWORD '$TEST_PASSWORD';
  END IF;
END
\$\$;
SQL
  PGPASSWORD="$TEST_PASSWORD" psql -qtAX -h 127.0.0.1 -p "$PG_PORT" -U "$TEST_ROLE" -d postgres \
    -c "SELECT 1" >/dev/null 2>&1 || die "role $TEST_ROLE exists but cannot log in over 127.0.0.1:$PG_PORT (check pg_hba.conf)"
fi

# Its own database too, so manage.py works against the test server outside pytest.
if ! PGPASSWORD="$TEST_PASSWORD" psql -qtAX -h 127.0.0.1 -p "$PG_PORT" -U "$TEST_ROLE" -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = '$TEST_ROLE'" 2>/dev/null | grep -qx 1; then
  PGPASSWORD="$TEST_PASSWORD" createdb -h 127.0.0.1 -p "$PG_PORT" -U "$TEST_ROLE" "$TEST_ROLE" \
    || die "could not create the database $TEST_ROLE"
fi

# --- Redis -----------------------------------------------------------------------------------
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
if ! redis_ready; then
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --logfile "${TMPDIR:-/tmp}/sonoreview-redis.log" >/dev/null
  for _ in $(seq 1 40); do redis_ready && break; sleep 0.25; done
  redis_ready || die "Redis did not answer PING on 127.0.0.1:$REDIS_PORT"
fi

# --- Orthanc ---------------------------------------------------------------------------------
# Not left running: the tests start their own Orthanc on loopback with a temporary store.
[ -x /usr/sbin/Orthanc ] || command -v Orthanc >/dev/null || die "Orthanc is not installed"
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || die "the Orthanc DICOMweb plugin is not installed"
exit 0
