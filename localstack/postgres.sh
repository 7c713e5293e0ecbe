# Sourced by dev.sh, test.sh and bench.sh: a throwaway PostgreSQL server on a free port, with
# a sample database and a read-only role, for the query router. Its data directory lives under
# PG_DIR and is removed by stop_postgres. The server logs every statement (`log_statement=all`)
# to $PG_DIR/postgres.log, so tests can check what reached the database as SQL.
# Like an RDS instance with rds.force_ssl, it refuses plain-text TCP connections: it presents a
# certificate for `localhost` (no IP address), signed by a CA made for this run with Debian's
# openssl ($PG_CA_FILE). The one exception is the role `cleartext`, let in on plain text (and
# on TLS) with clear-text password authentication, for the test that the router sends it only
# to a server whose certificate it verified.
# Needs free_port (emulator.sh). Installs Debian's postgresql if its binaries are missing.

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" ]] && { echo "$d"; return; }
  done
  return 1
}

# Runs a PostgreSQL binary as the server's owner (postgres refuses to run as root).
pg_as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
  if ! command -v openssl >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "postgres: installing Debian's openssl (the run's CA and server certificate)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  pg_bin >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "postgres: installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pg_bin >/dev/null || { echo "PostgreSQL is missing: install Debian's postgresql package" >&2; return 1; }
}

start_postgres() {
  ensure_postgres
  local bin; bin=$(pg_bin)
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/saas-pg.XXXXXX")
  chmod 755 "$PG_DIR"
  [[ $(id -u) == 0 ]] && chown postgres "$PG_DIR"
  PG_PORT=$(free_port)
  # Passwords over TCP (so a wrong one is refused, as on a real server); trust on the socket.
  pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  pg_tls "$PG_DIR/tls"
  [[ $(id -u) == 0 ]] && chown -R postgres "$PG_DIR/tls"
  cat > "$PG_DIR/data/pg_hba.conf" <<'HBA'
local     all    all        trust
hostnossl sample cleartext  127.0.0.1/32  password
hostssl   sample cleartext  127.0.0.1/32  password
hostssl   sample cleartext  ::1/128       password
hostssl   all    all        127.0.0.1/32  scram-sha-256
hostssl   all    all        ::1/128       scram-sha-256
hostnossl all    all        0.0.0.0/0     reject
hostnossl all    all        ::/0          reject
HBA
  pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c log_statement=all -c fsync=off -c ssl=on -c ssl_cert_file=$PG_DIR/tls/server.pem -c ssl_key_file=$PG_DIR/tls/server.key" start >/dev/null
  PG_BIN=$bin
  export PG_PORT PG_DIR PG_BIN PG_LOG="$PG_DIR/postgres.log" PG_CA_FILE="$PG_DIR/tls/ca.pem"
  # The owner's connections for tests go through the Unix socket (trusted, no TLS needed).
  export PG_ADMIN_URL="host=$PG_DIR port=$PG_PORT user=postgres dbname=sample"
  # The sample database: a read-only role and a table with one column of each mapped type.
  pg_as_owner "$bin/psql" -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
ALTER ROLE postgres PASSWORD 'local-dev-only-admin';
CREATE ROLE reader LOGIN PASSWORD 'local-dev-only-reader';
CREATE ROLE cleartext LOGIN PASSWORD 'local-dev-only-cleartext';
CREATE DATABASE sample;
\c sample
CREATE TABLE items (
  id int4 PRIMARY KEY, name text NOT NULL, price numeric(10,2), created_at timestamptz,
  seen timestamp, day date, data jsonb, blob bytea, active bool, big int8, ratio float8
);
INSERT INTO items
SELECT i, 'item ' || i, (i * 1.25)::numeric(10,2),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour',
       timestamp '2026-01-01 00:00:00' + i * interval '1 minute', date '2026-01-01' + i,
       jsonb_build_object('n', i, 'tags', jsonb_build_array('a', 'b')),
       decode(lpad(to_hex(i), 4, '0'), 'hex'), i % 2 = 0, i::int8 * 10000000000, i / 3.0
FROM generate_series(1, 250) AS i;
UPDATE items SET price = NULL, data = NULL WHERE id % 50 = 0;
CREATE TABLE secrets (id int4, value text);
-- For the tests: a view that outlasts the statement timeout, and one whose function writes.
CREATE VIEW slow AS SELECT pg_sleep(30)::text AS x;
CREATE TABLE counter (n int4);
CREATE FUNCTION bump() RETURNS int4 LANGUAGE sql VOLATILE SECURITY DEFINER
  AS 'INSERT INTO counter VALUES (1) RETURNING n';
CREATE VIEW bumping AS SELECT bump() AS n;
-- Columns of the other types a row can carry, for the round-trip test (a value read, used as
-- a filter, finds its row).
CREATE TABLE kinds (
  id int4 PRIMARY KEY, doc json, tags text[], ref uuid, span interval, f4 float4, small int2,
  label varchar(20), at timestamptz, seen timestamp
);
INSERT INTO kinds VALUES
  (1, '{"a": 1}', '{a,"b c"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04', 1.1, 7, 'one',
   '2026-03-04 05:06:07.123456+00', '2026-03-04 05:06:07.5'),
  (2, '[1, 2]', '{}', '00000000-0000-0000-0000-000000000002', '-3 hours', -0.25, -2, 'two "quoted"',
   '1999-12-31 23:59:59+00', '1999-12-31 23:59:59');
-- Row-level security keyed on the settings the router gives every query's transaction
-- (app.user_id, app.tenant_id, app.role): each user sees the notes they own.
CREATE TABLE notes (id int4 PRIMARY KEY, owner text NOT NULL, body text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON notes FOR SELECT USING (owner = current_setting('app.user_id', true));
CREATE VIEW whoami AS SELECT current_setting('app.user_id', true) AS user_id,
  current_setting('app.tenant_id', true) AS tenant_id, current_setting('app.role', true) AS role;
-- 1,000 rows of 10 kB: more than one answer may carry (RESULT_TOO_LARGE).
CREATE VIEW wide AS SELECT i AS id, repeat('x', 10000) AS pad FROM generate_series(1, 1000) AS i;
GRANT USAGE ON SCHEMA public TO reader;
GRANT SELECT ON items, slow, bumping, kinds, notes, whoami, wide TO reader;
SQL
  # verify-full is the default: the certificate names localhost, and the run's CA signs it.
  export SAMPLE_DATABASE_URL="postgres://reader:local-dev-only-reader@localhost:$PG_PORT/sample"
  echo "postgres: localhost:$PG_PORT, TLS only (sample database; CA: $PG_CA_FILE; log: $PG_LOG)"
}

# A CA and a server certificate for `localhost`, made for this run (nothing is kept).
pg_tls() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 -subj "/CN=local-dev-only test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  chmod 600 "$dir/server.key" "$dir/ca.key"
  rm -f "$dir/ca.key"
}

# The JSON body that registers the sample database as NAME: its string and the run's CA.
sample_registration() {
  python3 -c 'import json, os, sys
print(json.dumps({"name": sys.argv[1], "engine": "postgres",
                  "connection_string": os.environ["SAMPLE_DATABASE_URL"],
                  "ca_certificate": open(os.environ["PG_CA_FILE"]).read()}))' "$1"
}

# Restarts the server in place (the pool-survives-a-restart test).
restart_postgres() {
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w restart >/dev/null
}

stop_postgres() {
  if [[ -n "${PG_DIR:-}" && -d "$PG_DIR/data" ]]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [[ -n "${PG_DIR:-}" ]] && rm -rf "$PG_DIR"
  PG_DIR=
}
# Scripts started from the one that sourced this file (seed.sh, fuzz.sh) use it too.
export -f sample_registration
