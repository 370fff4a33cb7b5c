#!/usr/bin/env bash
# What every whole-system check (scripts/checks/*.sh) starts with:
#
#   . "$(dirname "$0")/../checklib.sh" NAME
#
# in the environment scripts/test.sh gives the checks: PGHOST/PGPORT/PGUSER
# of a superuser, PS_MOCK_URL, PG_CONFIG.  It sets
#   bindir    the server's programs (psql, createdb, ...)
#   status    0, and 1 once problem has been called: the check ends with
#             `exit $status`
#   work      a private temporary directory, removed at exit
# and defines
#   problem TEXT...            a failed expectation, printed "NAME: TEXT";
#                              the check goes on
#   at_exit COMMAND            run COMMAND (a shell string) at exit, before
#                              those registered earlier
#   fresh_db DB...             drop and create each DB; dropped again at exit
#   psqlc ARGS...              psql -X -q -At -v ON_ERROR_STOP=1, in $db
#                              when the check sets db (a -d in ARGS wins)
#   admin METHOD PATH [JSON]   a request to the local API server (its
#                              answer on stdout)
#   need_preload               stop unless the cluster preloads postscript_fdw
#   wait_for WHAT N COMMAND... run COMMAND until it succeeds, N times at most,
#                              0.25 s apart; a problem if it never does (the
#                              way a check waits: for what it looks for)
set -u
ps_check_name=$1
: "${PS_MOCK_URL:?}" "${PG_CONFIG:?}"
bindir=$("$PG_CONFIG" --bindir)
status=0
work=$(mktemp -d "/tmp/postscript_fdw.$ps_check_name.XXXXXX")
ps_exit_commands=('rm -rf "$work"')
trap 'for c in "${ps_exit_commands[@]}"; do eval "$c"; done' EXIT

problem() { printf '%s: %s\n' "$ps_check_name" "$*"; status=1; }
at_exit() { ps_exit_commands=("$1" "${ps_exit_commands[@]}"); }
psqlc() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At ${db:+-d "$db"} "$@"; }
admin() {
	curl -sS -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$PS_MOCK_URL$2"
}

fresh_db() {
	local d
	for d; do
		"$bindir/dropdb" --if-exists "$d" 2>/dev/null
		"$bindir/createdb" "$d" || exit 1
		at_exit "\"\$bindir/dropdb\" --if-exists $d 2>/dev/null"
	done
}

need_preload() {
	case ",$("$bindir/psql" -X -At -d postgres -c 'SHOW shared_preload_libraries')," in
	*,postscript_fdw,*) ;;
	*) problem "the cluster does not preload postscript_fdw"; exit 1 ;;
	esac
}

wait_for() {
	local what=$1 n=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.25
	done
	problem "gave up waiting for $what"
	return 1
}
