#!/usr/bin/env bash
# A throw-away PostgreSQL server for the store's tests against Postgres (the database the
# front service uses with several replicas). Debian's postgresql package is downloaded and
# unpacked into .dev/cache, not installed, so nothing on the machine changes. The server
# runs as nobody when started by root (Postgres refuses root), from a folder in /tmp that
# nobody can reach whatever the checkout's permissions, and listens on 127.0.0.1 only.
#   hack/postgres.sh start   prints the DSN of its superuser on stdout
#   hack/postgres.sh stop    stops it and removes its data
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=postgres
PG_PORT="${PG_PORT:-15432}"
PG_PKG="${PG_PKG:-postgresql-15}"
PG_ROOT="$CACHE_DIR/$PG_PKG"
# One folder per checkout, so two checkouts' servers never share one.
PG_DIR="/tmp/coderun-postgres-$(printf %s "$ROOT" | sha256sum | cut -c1-12)"
DSN="postgres://coderun@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

# Postgres refuses to run as root; as root, run it as nobody.
as_server_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

unpack() {
	[ -x "$PG_ROOT/bin/postgres" ] && return 0
	log "downloading and unpacking $PG_PKG (Debian's package; not installed)"
	local tmp
	tmp="$(mktemp -d)"
	(cd "$tmp" && apt-get download -q "$PG_PKG" >/dev/null 2>&1) || {
		apt-get update -qq && (cd "$tmp" && apt-get download -q "$PG_PKG" >/dev/null 2>&1)
	} || die "apt-get download $PG_PKG failed"
	mkdir -p "$tmp/root"
	dpkg-deb -x "$tmp"/"$PG_PKG"_*.deb "$tmp/root"
	rm -rf "$PG_ROOT" && mkdir -p "$(dirname "$PG_ROOT")"
	# initdb and postgres find their share/ and lib/ next to bin/ of the same version.
	mv "$tmp/root/usr/lib/postgresql/"*/ "$PG_ROOT"
	mkdir -p "$PG_ROOT/share" && cp -a "$tmp/root/usr/share/postgresql/"*/. "$PG_ROOT/share/"
	rm -rf "$tmp"
}

start() {
	unpack
	if [ -f "$PG_DIR/data/postmaster.pid" ] && as_server_user "$PG_DIR/pg/bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
		echo "$DSN"
		return 0
	fi
	rm -rf "$PG_DIR" && mkdir -p "$PG_DIR/data" "$PG_DIR/run"
	cp -a "$PG_ROOT" "$PG_DIR/pg"
	[ "$(id -u)" -eq 0 ] && chown -R nobody "$PG_DIR/data" "$PG_DIR/run"
	chmod 755 "$PG_DIR"
	log "initdb and start on 127.0.0.1:$PG_PORT (in $PG_DIR)"
	as_server_user "$PG_DIR/pg/bin/initdb" -D "$PG_DIR/data" -A trust -U coderun --no-sync >"$PG_DIR/run/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$PG_DIR/run/initdb.log")"
	as_server_user "$PG_DIR/pg/bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/run/server.log" -w -s \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR/run -c fsync=off" start ||
		die "postgres did not start: $(tail -n 5 "$PG_DIR/run/server.log")"
	echo "$DSN"
}

stop() {
	if [ -x "$PG_DIR/pg/bin/pg_ctl" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
		as_server_user "$PG_DIR/pg/bin/pg_ctl" -D "$PG_DIR/data" -m fast -w -s stop || true
	fi
	rm -rf "$PG_DIR"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
