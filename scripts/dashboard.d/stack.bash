# Sourced by scripts/dashboard-screenshots and scripts/dashboard-browser-test: a private
# PostgreSQL cluster, the sandbox and `callwindow run` (debug binary, dashboard on a free port),
# all stopped by the EXIT trap it installs, also on Ctrl-C. The caller sets `name` (for
# messages) before sourcing, then calls stack_start, seeds, and stack_run_daemon.
#
# Sets: root, bin, dir (a temporary folder for logs), url (the database), api_url (the
# sandbox), dashboard (the dashboard's base URL, once stack_run_daemon returned). With
# stack_remove_on_success=1 a successful run removes $dir at the end.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
bin="$root/.build/debug/callwindow"
die() { printf '%s: %s\n' "$name" "$*" >&2; exit 1; }
[ -x "$bin" ] || die "no $bin: run swift build first"

dir=$(mktemp -d /tmp/callwindow-dashboard-XXXXXX)
chmod 755 "$dir"   # the cluster may run as the postgres user, which must reach $dir/pg
sandbox_pid="" daemon_pid="" cluster_started=0 stack_remove_on_success=0
stack_stop() {   # pid: SIGTERM, up to 30 s, then SIGKILL
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stack_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stack_stop "$daemon_pid"
  stack_stop "$sandbox_pid"
  [ "$cluster_started" -eq 1 ] && "$root/scripts/pgcluster" stop "$dir/pg" >/dev/null || true
  rm -rf "$dir/pg"
  [ "$status" -ne 0 ] && echo "$name: stopped (exit $status); logs in $dir" >&2
  [ "$status" -eq 0 ] && [ "$stack_remove_on_success" -eq 1 ] && rm -rf "$dir"
  exit "$status"
}
trap stack_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The cluster, the sandbox (its demo account's fake credentials exported under the names
# config/callwindow.yaml gives them), migrate and labels sync.
stack_start() {
  cluster_started=1
  url=$(PGCLUSTER_FAST=1 "$root/scripts/pgcluster" start "$dir/pg")
  local key_id_env api_key_env key_id api_key
  key_id_env=$(sed -n 's/^ *key_id_env: *\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' config/callwindow.yaml | head -1)
  api_key_env=$(sed -n 's/^ *api_key_env: *\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' config/callwindow.yaml | head -1)
  key_id=$(sed -n 's/.*key_id: *\([0-9a-fA-F-]*\).*/\1/p' config/sandbox.yaml | head -1)
  api_key=$(sed -n 's/.*api_key: *\([0-9a-fA-F-]*\).*/\1/p' config/sandbox.yaml | head -1)
  export "$key_id_env=$key_id" "$api_key_env=$api_key"
  CALLWINDOW_TOKEN_KEY=$(head -c 32 /dev/urandom | base64)
  export CALLWINDOW_TOKEN_KEY

  # The files exist before the background job opens them: on a loaded machine the loop below
  # can read before the job's redirections ran (sed then fails, and set -e ends the script).
  : >"$dir/sandbox.out"
  "$bin" sandbox --config config/sandbox.yaml --port 0 >"$dir/sandbox.out" 2>"$dir/sandbox.log" &
  sandbox_pid=$!
  api_url=""
  for _ in $(seq 1 100); do
    api_url=$(sed -n 's/^listening on \(http:.*\)$/\1/p' "$dir/sandbox.out" | head -1)
    [ -n "$api_url" ] && break
    sleep 0.1
  done
  [ -n "$api_url" ] || die "the sandbox did not start within 10 s"
  export CALLWINDOW_DATABASE_URL="$url" CALLWINDOW_API_BASE_URL="$api_url" CALLWINDOW_HTTP_PORT=0
  "$bin" migrate >"$dir/migrate.log" 2>&1 || die "callwindow migrate failed (see $dir/migrate.log)"
  "$bin" labels sync --config config/callwindow.yaml >"$dir/labels.log" 2>&1 || die "callwindow labels sync failed"
}

# `callwindow run --config config/callwindow.yaml` (with the caller's CALLWINDOW_* overrides);
# waits at most 60 s for the logged dashboard URL.
stack_run_daemon() {
  : >"$dir/daemon.log"   # read by the loop below, maybe before the job's redirection ran
  "$bin" run --config config/callwindow.yaml >"$dir/daemon.log" 2>&1 &
  daemon_pid=$!
  dashboard=""
  for _ in $(seq 1 300); do
    dashboard=$(sed -n 's/.*operations endpoint listening.*url=\(http:[^ ]*\).*/\1/p' "$dir/daemon.log" | head -1)
    [ -n "$dashboard" ] && break
    kill -0 "$daemon_pid" 2>/dev/null || { tail -20 "$dir/daemon.log" >&2; die "callwindow run stopped"; }
    sleep 0.2
  done
  [ -n "$dashboard" ] || die "the dashboard URL was not logged within 60 s"
}

psql_() { psql "$url" -X -q -tA -v ON_ERROR_STOP=1 "$@"; }
