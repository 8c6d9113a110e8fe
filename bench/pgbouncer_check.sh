#!/usr/bin/env bash
# The app behind PgBouncer in transaction mode: a throw-away pgbouncer (Debian's: apt-get install
# pgbouncer) in front of DATABASE_URL's server, and some API tests through it with
# DATABASE_POOLER=transaction — the earn and redemption paths, idempotency, and the live
# concurrency tests, whose threads commit on their own connections (consecutive transactions of
# one Django connection then land on different server connections).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalty bash bench/pgbouncer_check.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?DATABASE_URL names the PostgreSQL server behind the pooler}"
PORT=${PGBOUNCER_PORT:-6439}
command -v pgbouncer >/dev/null || PATH=$PATH:/usr/sbin
command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (apt-get install pgbouncer)"; exit 2; }

read -r host dbport user db < <(.venv/bin/python - <<'PY'
import os
from urllib.parse import urlparse
u = urlparse(os.environ["DATABASE_URL"])
print(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres", u.path.lstrip("/") + "_pgbouncer")
PY
)
dir=$(mktemp -d)
trap 'kill "$(cat "$dir/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$dbport
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
echo "\"$user\" \"\"" >"$dir/users.txt"
chmod -R a+rX "$dir"
chmod a+w "$dir"
# pgbouncer refuses to run as root.
if [ "$(id -u)" = 0 ]; then pgbouncer -d -u postgres "$dir/pgbouncer.ini"; else pgbouncer -d "$dir/pgbouncer.ini"; fi
sleep 1
echo "pgbouncer (transaction mode, pool of 4 server connections) on 127.0.0.1:$PORT"
# PGBOUNCER_CHECK_POOLER=session shows what breaks without the setting.
export DATABASE_URL="postgres://$user@127.0.0.1:$PORT/$db" DATABASE_POOLER=${PGBOUNCER_CHECK_POOLER:-transaction}
.venv/bin/python manage.py ensure_database
# --reuse-db: the test database is created once; dropping it would meet pgbouncer's own server
# connections to it.
if [ $# -eq 0 ]; then
  set -- tests/api/test_purchases.py tests/api/test_redemptions.py tests/api/test_idempotency.py \
    tests/api/test_live_concurrency.py
fi
.venv/bin/pytest -q -p no:cacheprovider --reuse-db "$@"
echo "pgbouncer: $(grep -c 'prepared statement' "$dir/pgbouncer.log" || true) prepared-statement errors in its log"
