# Shared shell functions for scripts/test.sh, scripts/demo.sh and bench/.
# Source it; it sets no options of its own and starts nothing until asked.
#
#   ps_install_deps     apt-get the build and run dependencies that are missing
#   ps_build_install    make + make install (PG_CONFIG overridable)
#   ps_start_cluster    a throwaway PostgreSQL cluster, run as the postgres OS user,
#                       on a private port and socket directory; exports PGHOST/PGPORT/PGUSER
#   ps_start_mock       the local Postscript API server on an ephemeral loopback port;
#                       exports PS_MOCK_URL
#   ps_venv NAME        a Python virtual environment with requirements/NAME.txt
#                       installed; prints its directory
#   ps_cleanup          stops both and removes the work directory (installed as a trap
#                       by ps_setup_traps); with PS_KEEP=1 both keep running and the
#                       directory stays, for a post-mortem or to go on by hand

PS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# one lock per installation target: runs that install into the same
# PostgreSQL queue, runs against different installations do not
PS_LOCK=/tmp/postscript_fdw.install.$(printf %s "$PG_CONFIG" | cksum | cut -d" " -f1).lock
PS_PACKAGES="postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev curl make gcc python3"
PS_WORK=""
PS_MOCK_PID=""

ps_log() { printf '==> %s\n' "$*" >&2; }
ps_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install what is missing.  Extra package names may be passed as arguments.
ps_install_deps() {
	local missing="" p
	for p in $PS_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
			|| missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || ps_die "missing packages:$missing (run as root, or install them)"
	ps_log "installing:$missing"
	apt-get update -qq >&2 || ps_die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2 \
		|| ps_die "apt-get install failed"
}

# Take the installation's lock: `make install` writes into the PostgreSQL
# that PG_CONFIG names, so concurrent runs against it (other checkouts) queue.
ps_take_lock() {
	exec 9>"$PS_LOCK"
	if ! flock -n 9; then
		ps_log "waiting for another run to release $PS_LOCK"
		flock 9
	fi
}

ps_build_install() {
	[ -x "$PG_CONFIG" ] || ps_die "PG_CONFIG=$PG_CONFIG is not executable"
	ps_log "building with $PG_CONFIG"
	make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" >&2 || ps_die "build failed"
	make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" install >&2 || ps_die "make install failed"
}

# A virtual environment holding the packages pinned in requirements/NAME.txt,
# made when missing and kept under /var/tmp, one per requirements file's
# content and Python version, so that later runs reuse it.  Prints its path.
ps_venv() {
	local req="$PS_ROOT/requirements/$1.txt" dir pyver sum
	[ -f "$req" ] || ps_die "no $req"
	pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	sum=$(cksum <"$req" | cut -d' ' -f1)
	dir=/var/tmp/postscript_fdw-venv/$1-py$pyver-$sum
	if [ ! -e "$dir/.complete" ]; then
		ps_install_deps python3-venv
		ps_log "creating the Python environment $dir"
		rm -rf "$dir"
		mkdir -p "$(dirname "$dir")"
		python3 -m venv "$dir" >&2 || ps_die "python3 -m venv failed"
		"$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 \
			|| ps_die "pip install -r $req failed"
		touch "$dir/.complete"
	fi
	printf '%s\n' "$dir"
}

ps_setup_traps() {
	trap ps_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

ps_workdir() {
	[ -n "$PS_WORK" ] && return 0
	PS_WORK=$(mktemp -d /tmp/postscript_fdw.XXXXXX)
	chmod 755 "$PS_WORK"
}

# An unused loopback TCP port.
ps_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ps_as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Extra server settings may be passed as arguments (each "-c name=value").
ps_start_cluster() {
	local bindir port
	bindir=$("$PG_CONFIG" --bindir)
	ps_workdir
	mkdir -p "$PS_WORK/data" "$PS_WORK/sock" "$PS_WORK/log"
	[ "$(id -u)" = 0 ] && chown postgres: "$PS_WORK/data" "$PS_WORK/sock" "$PS_WORK/log"
	ps_log "initdb in $PS_WORK/data"
	ps_as_postgres "$bindir/initdb" -D "$PS_WORK/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$PS_WORK/initdb.log" 2>&1 \
		|| { cat "$PS_WORK/initdb.log" >&2; ps_die "initdb failed"; }
	port=$(ps_free_port)
	ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -l "$PS_WORK/log/postgres.log" -w -t 60 \
		-o "-p $port -k $PS_WORK/sock -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off $*" \
		start >/dev/null 9>&- || { cat "$PS_WORK/log/postgres.log" >&2; ps_die "PostgreSQL did not start"; }
	PS_PG_STARTED=1
	export PGHOST="$PS_WORK/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
	export PS_PG_LOG="$PS_WORK/log/postgres.log"
	ps_log "PostgreSQL on port $port (socket $PGHOST)"
}

# Arguments are passed to the server (e.g. --subscribers 100000 --latency-ms 100).
ps_start_mock() {
	local i
	ps_workdir
	rm -f "$PS_WORK/mock.port"
	python3 "$PS_ROOT/mock/postscript_mock.py" --host 127.0.0.1 --port 0 \
		--port-file "$PS_WORK/mock.port" --quiet "$@" >"$PS_WORK/mock.log" 2>&1 9>&- &
	PS_MOCK_PID=$!
	for i in $(seq 1 1200); do
		[ -s "$PS_WORK/mock.port" ] && break
		kill -0 "$PS_MOCK_PID" 2>/dev/null || { cat "$PS_WORK/mock.log" >&2; ps_die "the local API server exited"; }
		sleep 0.1
	done
	[ -s "$PS_WORK/mock.port" ] || ps_die "the local API server did not start"
	export PS_MOCK_URL="http://127.0.0.1:$(cat "$PS_WORK/mock.port")"
	ps_log "local Postscript API server at $PS_MOCK_URL"
}

ps_stop_mock() {
	if [ -n "$PS_MOCK_PID" ]; then
		kill "$PS_MOCK_PID" 2>/dev/null
		wait "$PS_MOCK_PID" 2>/dev/null
		PS_MOCK_PID=""
	fi
}

ps_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "${PS_KEEP:-0}" = 1 ] && [ -n "$PS_WORK" ]; then
		ps_log "kept running (PS_KEEP=1): work directory $PS_WORK"
		[ -n "${PS_PG_STARTED:-}" ] && ps_log "  psql: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres psql"
		[ -n "$PS_MOCK_PID" ] && ps_log "  local API server: $PS_MOCK_URL (pid $PS_MOCK_PID)"
		ps_log "  stop: runuser -u postgres -- $("$PG_CONFIG" --bindir)/pg_ctl -D $PS_WORK/data stop; kill $PS_MOCK_PID"
		exit $rc
	fi
	ps_stop_mock
	if [ -n "${PS_PG_STARTED:-}" ]; then
		ps_as_postgres "$("$PG_CONFIG" --bindir)/pg_ctl" -D "$PS_WORK/data" -m immediate stop \
			>/dev/null 2>&1
		PS_PG_STARTED=""
	fi
	[ -n "$PS_WORK" ] && rm -rf "$PS_WORK"
	exit $rc
}
