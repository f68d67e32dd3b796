#!/usr/bin/env bash
# kefu's benchmarks against its peers, in one run on this machine; writes
# BENCHMARKS.md. Not a test: `make test` never runs it.
#
#   make bench            full: every scenario 3 times, the median reported (~45 min)
#   make bench QUICK=1    one run of each scenario, shorter steps, fewer connections (~1 min)
#   bash tests/bench/run.sh [--quick] [--out FILE] [--only LIST]
#       LIST: comma-separated scenarios: held,held4,tput,lat,slow,storm,api
#       (held4, the 4-node connection count, runs in the full mode only)
#
# What it starts (all on 127.0.0.1, all stopped at the end):
#   a kefu stack (deploy/stack, KEFU_EXTRA_INI=tests/bench/bench.ini) in
#   build/bench/stack with 2 relay nodes (4 in the full mode);
#   the Node.js `ws` peer (tests/bench/peers/node-relay.mjs);
#   Nchan (nginx + libnginx-mod-nchan, one worker);
#   for the API: a lighttpd of its own in front of kefu-api, the bare FastCGI
#   app (tests/bench/peers/bare-fcgi) and a static file; wrk.
# The servers are pinned to CPU 0 and the load generator, Redis, MariaDB and
# wrk to CPU 1 (taskset). Installs its own dependencies (nginx, Nchan, wrk
# from Debian; ws from npm in tests/bench/peers) when run as root.
# Results (raw outputs, commands) stay in build/bench/results.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/tests/bench
B=$ROOT/build/bench
LG=$B/loadgen
BARE=$B/bare-fcgi
RES=$B/results
STACKDIR=$B/stack
STACK=$ROOT/deploy/stack
QUICK=0
OUT=$ROOT/BENCHMARKS.md
ONLY=held,held4,tput,lat,slow,storm,api

while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--out)
		OUT=$2
		shift
		;;
	--only)
		ONLY=$2
		shift
		;;
	*)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
		exit 2
		;;
	esac
	shift
done

say() { echo "bench: [$(($(date +%s) - ${T_START:-$(date +%s)}))s] $*" >&2; }
die() {
	echo "bench: error: $*" >&2
	exit 1
}
want() { [[ ,$ONLY, == *,$1,* ]]; }

# ---------------------------------------------------------------- settings

if ((QUICK)); then
	RUNS=1
	RELAYS=2
	HOLD_SEC=1
	SETTLE=0.3
	STEP_SEC=0.5
	DRAIN=0.5
	RATES=2000,10000,20000,40000,160000
	LAT_SEC=1
	WRK_SEC=1
	STORM_IDLE=1500
	STORM_AFTER=1
	STORM_DRAIN=1
	STORM_TAIL=0.5
	SLOW_SEC=1
	SLOW_DRAIN=0.5
	# a smoke version: fewer connections than the fd limit; the connections
	# held (1) and the latency step (4) are measured in one run per server
	LAT_IDLE=1500
	HELD_IDLE=$LAT_IDLE
	HELD_PAIRS=1000
	HELD_THEN_LAT=1
	ONLY=${ONLY//held4/}
else
	RUNS=3
	RELAYS=4
	HOLD_SEC=10
	SETTLE=2
	STEP_SEC=4
	DRAIN=2
	RATES=1000,2000,3000,5000,7500,10000,15000,20000,25000,30000,40000,50000,60000,70000,80000,100000,120000,140000,160000,200000
	LAT_SEC=10
	WRK_SEC=10
	STORM_IDLE=15000
	STORM_AFTER=2
	STORM_DRAIN=3
	STORM_TAIL=2
	SLOW_SEC=30
	SLOW_DRAIN=2
	# connections held on one node: up to the 20,000 open files a process
	# may have (hard limit here); the relay needs ~10 for itself
	HELD_IDLE=10000
	HELD_PAIRS=4995
	LAT_IDLE=15000
	HELD_THEN_LAT=0
fi
TPUT_PAIRS=1000
WRK_CONNS=32
# the bare FastCGI app gets as many threads as kefu-api has workers (its
# default [Api] Workers; bench.ini does not change it)
API_WORKERS=16

NCPU=$(nproc)
if ((NCPU >= 2)); then
	SCPU=0
	CCPU=1
else
	SCPU=0
	CCPU=0
	say "only one CPU: servers and load generator share it"
fi

# ---------------------------------------------------------------- deps

need_root_install() {
	local missing=()
	command -v nginx >/dev/null || missing+=(nginx)
	[[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] || missing+=(libnginx-mod-nchan)
	command -v wrk >/dev/null || missing+=(wrk)
	if ((${#missing[@]})); then
		((EUID == 0)) || die "missing: ${missing[*]} (run as root to install them)"
		say "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	if [[ ! -d $BENCH/peers/node_modules/ws ]]; then
		say "npm install in tests/bench/peers"
		(cd "$BENCH/peers" && npm install --no-audit --no-fund --silent)
	fi
}
need_root_install
for t in "$LG" "$BARE" "$ROOT/build/bin/kefu-relay" "$ROOT/build/bin/kefu-api"; do
	[[ -x $t ]] || die "$t is missing: run make bench (it builds first)"
done
for t in taskset node redis-cli curl wrk nginx lighttpd; do
	command -v "$t" >/dev/null || die "$t is not installed"
done

# ---------------------------------------------------------------- cleanup

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	PIDS=()
	"$STACK" down "$STACKDIR" >/dev/null 2>&1 || true
	# a relay at its fd limit logs every failed accept: keep the last MB
	for p in "$STACKDIR"/log/kefu-relay*.log; do
		if [[ -f $p ]] && (($(stat -c %s "$p") > 67108864)); then
			tail -c 1048576 "$p" >"$p.tail" && mv -f "$p.tail" "$p"
		fi
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # PID
	local keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

stop_pid() { # PID
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# any socket on the port, listening or not (an outgoing connection's local
# port blocks a bind to 127.0.0.1 as well)
port_free() { [[ -z $(ss -Htan "sport = :$1" 2>/dev/null) ]]; }
# below the ephemeral range (32768-) and below deploy/stack's blocks (18000-)
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((12000 + (RANDOM % 6000)))
		port_free "$p" && port_free $((p + 1)) && {
			echo "$p"
			return 0
		}
	done
	die "no free port found"
}

wait_http() { # URL SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		curl --noproxy '*' -s -o /dev/null -m 1 "$1" && return 0
		sleep 0.1
	done
	die "$1 did not answer within $2 s"
}

# ---------------------------------------------------------------- results

rm -rf "$RES"
mkdir -p "$RES" "$B/peer"
T_START=$(date +%s)
# what is measured: the binaries as built now (make bench builds them first)
KEFU_REV="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- ws-relay shared fcgi-api ||
	echo ' + uncommitted changes in ws-relay/ shared/ fcgi-api/')"
KEFU_BUILT="kefu-relay built $(date -u -r "$ROOT/build/bin/kefu-relay" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$ROOT/build/bin/kefu-relay" | cut -c1-12)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CMDS=$RES/commands.txt
: >"$CMDS"

# record SCENARIO SYSTEM RUN CMD...: run the load generator (bounded by
# timeout), keep its output, and log the command.
record() {
	local scen=$1 sys=$2 run=$3
	shift 3
	mkdir -p "$RES/$scen"
	printf '%s/%s run %s: %s\n' "$scen" "$sys" "$run" "$*" >>"$CMDS"
	say "$scen/$sys run $run (load $(cut -d' ' -f1 /proc/loadavg))"
	echo "L loadavg_1m $(cut -d' ' -f1 /proc/loadavg)" >"$RES/$scen/$sys.$run.txt"
	timeout 900 "$@" >>"$RES/$scen/$sys.$run.txt" 2>&1 || say "$scen/$sys run $run: load generator exit $?"
	grep -E '^(step|best|idle conn|chat conn|relay|node|nchan|after|storm)' "$RES/$scen/$sys.$run.txt" | sed 's/^/    /' >&2 || true
}

# ---------------------------------------------------------------- kefu

say "starting the kefu stack ($RELAYS relay nodes) in $STACKDIR"
KEFU_RELAYS=$RELAYS KEFU_EXTRA_INI=$BENCH/bench.ini "$STACK" up "$STACKDIR" >"$B/stack-up.log" 2>&1 ||
	{
		tail -n 30 "$B/stack-up.log" >&2
		die "deploy/stack up failed"
	}
# shellcheck disable=SC1091
. "$STACKDIR/stack.env"
read -r -a RELAY_URLS <<<"$KEFU_RELAY_URLS"
rcli() { REDISCLI_AUTH=$KEFU_REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$KEFU_REDIS_PORT" "$@"; }
spid() { cat "$STACKDIR/run/$1.pid"; }
pin() { # CPU PID...
	local c=$1 p
	shift
	for p in "$@"; do
		taskset -a -p -c "$c" "$p" >/dev/null
	done
}
pin_stack() {
	local i
	pin "$CCPU" "$(spid redis)" "$(spid mysql)"
	# with lighttpd, kefu-api is the web server's child
	# shellcheck disable=SC2046
	pin "$SCPU" "$(spid web)" $(pgrep -P "$(spid web)")
	for ((i = 1; i <= RELAYS; i++)); do
		[[ -f $STACKDIR/run/relay$i.pid ]] && pin "$SCPU" "$(spid "relay$i")"
	done
	return 0
}
pin_stack

# kefu_fresh N: restart relay nodes 1..N on an empty Redis (the others
# stay stopped: a node that runs takes a share of the MySQL writes), so
# every run starts from fresh processes (RSS) and no state of the run before.
kefu_fresh() {
	local n=$1 i
	"$STACK" stop-service relay "$STACKDIR" >/dev/null 2>&1
	# a relay at its fd limit logs every failed accept: keep the disk
	for i in "$STACKDIR"/log/kefu-relay*.log; do
		[[ -f $i ]] && : >"$i"
	done
	rcli FLUSHDB >/dev/null
	for ((i = 1; i <= n; i++)); do
		"$STACK" start-service "relay$i" "$STACKDIR" >/dev/null 2>&1 || die "relay node $i did not start again"
	done
	pin_stack
	sleep 0.5
}

kefu_pids() { # "relay=PID" for node 1, or relayI=PID for the first N nodes
	local n=$1 i out=()
	if ((n == 1)); then
		out+=(--pid "relay=$(spid relay1)")
	else
		for ((i = 1; i <= n; i++)); do
			out+=(--pid "relay$i=$(spid "relay$i")")
		done
	fi
	out+=(--pid "redis=$(spid redis)" --pid "mysql=$(spid mysql)")
	echo "${out[@]}"
}

LGK=(taskset -c "$CCPU" "$LG" --proto kefu --config "$KEFU_CONFIG" --http "$KEFU_HTTP")

# ---------------------------------------------------------------- peers

NODE_PID=
node_start() {
	local port
	port=$(free_port)
	setsid taskset -c "$SCPU" node "$BENCH/peers/node-relay.mjs" "$port" >"$B/peer/node.log" 2>&1 &
	NODE_PID=$!
	PIDS+=("$NODE_PID")
	NODE_URL=ws://127.0.0.1:$port
	wait_http "http://127.0.0.1:$port/healthz" 10
}
node_stop() {
	if [[ -n $NODE_PID ]]; then stop_pid "$NODE_PID"; fi
	NODE_PID=
}

NCHAN_PID=
NCHAN_WORKER=
nchan_start() {
	local port d=$B/peer/nchan
	port=$(free_port)
	rm -rf "$d"
	mkdir -p "$d/tmp" "$d/logs"
	cat >"$d/nginx.conf" <<-EOF
		# Nchan peer for kefu's benchmarks: one worker, 1:1 through per-peer
		# channels (a client subscribes to its own channel, ?me=, and what it
		# sends over its WebSocket is published to its peer's, ?peer=)
		# worker_connections counts more than client sockets: with 20000,
		# Nchan refused ~1,200 clients short of the 20,000-fd limit
		load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
		daemon off;
		worker_processes 1;
		worker_rlimit_nofile 20000;
		pid $d/nginx.pid;
		error_log $d/logs/error.log warn;
		events { worker_connections 30000; }
		http {
		  access_log off;
		  client_body_temp_path $d/tmp/body;
		  proxy_temp_path $d/tmp/proxy;
		  fastcgi_temp_path $d/tmp/fcgi;
		  uwsgi_temp_path $d/tmp/uwsgi;
		  scgi_temp_path $d/tmp/scgi;
		  nchan_shared_memory_size 256M;
		  server {
		    listen 127.0.0.1:$port;
		    location = /healthz { return 200 "ok\n"; }
		    location = /ws {
		      nchan_pubsub websocket;
		      nchan_subscriber_channel_id \$arg_me;
		      nchan_publisher_channel_id \$arg_peer;
		      nchan_message_buffer_length 10;
		      nchan_message_timeout 30s;
		    }
		  }
		}
	EOF
	setsid taskset -c "$SCPU" nginx -p "$d" -c "$d/nginx.conf" >"$d/logs/stdout.log" 2>&1 &
	NCHAN_PID=$!
	PIDS+=("$NCHAN_PID")
	NCHAN_URL=ws://127.0.0.1:$port
	wait_http "http://127.0.0.1:$port/healthz" 10
	NCHAN_WORKER=$(pgrep -P "$NCHAN_PID" | head -n 1)
	[[ -n $NCHAN_WORKER ]] || die "nginx started no worker"
}
nchan_stop() {
	if [[ -n $NCHAN_PID ]]; then stop_pid "$NCHAN_PID"; fi
	NCHAN_PID=
}

LGP=(taskset -c "$CCPU" "$LG")

# ---------------------------------------------------------------- scenarios

# (1) connections held up to the fd limit on one node, memory at 10k and at
# the limit, after a ping on every connection. QUICK (HELD_THEN_LAT): then
# the latency step of (4) in the same run, its output copied to lat/.
scen_held() {
	local r sys lat=()
	((HELD_THEN_LAT)) && lat=(--rates 2000 --step-sec "$LAT_SEC" --drain-sec "$DRAIN" --stop-p99-ms 1000000)
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 1
		# shellcheck disable=SC2046
		record held kefu "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" --idle $HELD_IDLE \
			--pairs $HELD_PAIRS --connect-timeout 5 --hold-sec "$HOLD_SEC" --settle-sec "$SETTLE" --label held-kefu \
			"${lat[@]}" $(kefu_pids 1)
		# accept() failing with EMFILE once the relay is at its fd limit
		echo "R relay_emfile_log_lines $(grep -c 'accept: errno 24' "$STACKDIR/log/kefu-relay1.log" || true)" \
			>>"$RES/held/kefu.$r.txt"
		node_start
		record held node "$r" "${LGP[@]}" --proto node --url "$NODE_URL" --idle $HELD_IDLE \
			--pairs $HELD_PAIRS --connect-timeout 5 --hold-sec "$HOLD_SEC" --settle-sec "$SETTLE" --label held-node \
			"${lat[@]}" --pid "node=$NODE_PID"
		node_stop
		nchan_start
		record held nchan "$r" "${LGP[@]}" --proto nchan --url "$NCHAN_URL" --idle $HELD_IDLE \
			--pairs $HELD_PAIRS --connect-timeout 5 --hold-sec "$HOLD_SEC" --settle-sec "$SETTLE" --label held-nchan \
			"${lat[@]}" --pid "nchan=$NCHAN_WORKER"
		nchan_stop
		if ((HELD_THEN_LAT)); then
			mkdir -p "$RES/lat"
			for sys in kefu node nchan; do
				cp "$RES/held/$sys.$r.txt" "$RES/lat/$sys.$r.txt"
			done
		fi
	done
}

# (1b) the same across 4 relay nodes behind one Redis (full mode)
scen_held4() {
	local r urls
	((RELAYS >= 4)) || return 0
	urls=$(
		IFS=,
		echo "${RELAY_URLS[*]:0:4}"
	)
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 4
		# shellcheck disable=SC2046
		record held4 kefu "$r" "${LGK[@]}" --keys redis --url "$urls" --idle 0 \
			--pairs $((4 * (HELD_PAIRS + HELD_IDLE / 2))) --procs 5 --hold-sec "$HOLD_SEC" \
			--settle-sec "$SETTLE" --label held4-kefu $(kefu_pids 4)
	done
}

# (3) 1:1 throughput with 1k pairs, rate stepped up
scen_tput() {
	local r args=(--pairs $TPUT_PAIRS --rates "$RATES" --step-sec "$STEP_SEC" --drain-sec "$DRAIN"
		--settle-sec "$SETTLE")
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 1
		# shellcheck disable=SC2046
		record tput kefu "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" "${args[@]}" \
			--label tput-kefu $(kefu_pids 1)
		kefu_fresh 2
		# shellcheck disable=SC2046
		record tput kefu2 "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" \
			--agent-url "${RELAY_URLS[1]}" "${args[@]}" --label tput-kefu-2nodes $(kefu_pids 2)
		say "MySQL writer backlog after the 2-node run: $(rcli XLEN kf:wq) messages"
		node_start
		record tput node "$r" "${LGP[@]}" --proto node --url "$NODE_URL" "${args[@]}" \
			--label tput-node --pid "node=$NODE_PID"
		node_stop
		nchan_start
		record tput nchan "$r" "${LGP[@]}" --proto nchan --url "$NCHAN_URL" "${args[@]}" \
			--label tput-nchan --pid "nchan=$NCHAN_WORKER"
		nchan_stop
	done
}

# (4) latency at 2k msg/s with 15k idle connections
scen_lat() {
	local r args=(--idle $LAT_IDLE --pairs $TPUT_PAIRS --rates 2000 --step-sec "$LAT_SEC"
		--drain-sec "$DRAIN" --settle-sec "$SETTLE" --stop-p99-ms 1000000)
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 1
		# shellcheck disable=SC2046
		record lat kefu "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" "${args[@]}" \
			--label lat-kefu $(kefu_pids 1)
		node_start
		record lat node "$r" "${LGP[@]}" --proto node --url "$NODE_URL" "${args[@]}" \
			--label lat-node --pid "node=$NODE_PID"
		node_stop
		nchan_start
		record lat nchan "$r" "${LGP[@]}" --proto nchan --url "$NCHAN_URL" "${args[@]}" \
			--label lat-nchan --pid "nchan=$NCHAN_WORKER"
		nchan_stop
	done
}

# (5) slow consumers: 50 pairs at 5,000 msg/s (400-byte messages), a step
# as it is, then the same step with 1 % of the connections no longer reading
# (they had a 4 KB SO_RCVBUF from the start); the others' latency, the
# server's RSS, and whether it drops the stalled readers
scen_slow() {
	local r args=(--pairs 50 --rates 5000,5000 --step-sec "$SLOW_SEC" --stall-pct 1 --msg-bytes 400
		--drain-sec "$SLOW_DRAIN" --settle-sec "$SETTLE" --stop-p99-ms 1000000)
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 1
		# shellcheck disable=SC2046
		record slow kefu "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" "${args[@]}" \
			--label slow-kefu $(kefu_pids 1)
		node_start
		record slow node "$r" "${LGP[@]}" --proto node --url "$NODE_URL" "${args[@]}" \
			--label slow-node --pid "node=$NODE_PID"
		node_stop
		nchan_start
		record slow nchan "$r" "${LGP[@]}" --proto nchan --url "$NCHAN_URL" "${args[@]}" \
			--label slow-nchan --pid "nchan=$NCHAN_WORKER"
		nchan_stop
	done
}

# (6) reconnect storm: every idle connection and every chatting visitor is
# reset at once (no close frame) while 200 pairs chat at 1,000 msg/s; all
# reconnect (kefu visitors with last_seq); time until 99 % / all are back,
# and the agents' stored messages against what their visitors received
scen_storm() {
	local r args=(--idle "$STORM_IDLE" --pairs 200 --rates 1000 --step-sec 120
		--storm-after "$STORM_AFTER" --storm-tail-sec "$STORM_TAIL" --drain-sec "$STORM_DRAIN" --settle-sec "$SETTLE" --stop-p99-ms 1000000)
	for ((r = 1; r <= RUNS; r++)); do
		kefu_fresh 1
		# shellcheck disable=SC2046
		record storm kefu "$r" "${LGK[@]}" --keys rest --url "${RELAY_URLS[0]}" "${args[@]}" \
			--label storm-kefu $(kefu_pids 1)
		node_start
		record storm node "$r" "${LGP[@]}" --proto node --url "$NODE_URL" "${args[@]}" \
			--label storm-node --pid "node=$NODE_PID"
		node_stop
		nchan_start
		record storm nchan "$r" "${LGP[@]}" --proto nchan --url "$NCHAN_URL" "${args[@]}" \
			--label storm-nchan --pid "nchan=$NCHAN_WORKER"
		nchan_stop
	done
}

# (API) wrk through one lighttpd: kefu-api's info and link, the bare
# FastCGI app answering the same bytes, static files of the same size
scen_api() {
	local d=$B/peer/api port token r name url method wpid bpid
	port=$(free_port)
	rm -rf "$d"
	mkdir -p "$d/www"
	cat >"$d/lighttpd.conf" <<-EOF
		# lighttpd for kefu's API benchmark: the same server in front of
		# kefu-api, the bare FastCGI app and static files
		server.modules = ( "mod_access", "mod_fastcgi" )
		server.bind = "127.0.0.1"
		server.port = $port
		server.document-root = "$d/www"
		server.tag = "kefu"
		server.max-keep-alive-requests = 100000
		mimetype.assign = ( ".json" => "application/json; charset=utf-8" )
		# kefu-api spawned by lighttpd, as deploy/lighttpd/kefu.conf does
		\$HTTP["url"] =~ "^/(api|admin)/" {
		    fastcgi.server = ( "/" => ((
		        "socket" => "$d/kefu-api.sock",
		        "bin-path" => "$ROOT/build/bin/kefu-api",
		        "bin-environment" => ( "KEFU_CONFIG" => "$KEFU_CONFIG" ),
		        "max-procs" => 1,
		        "check-local" => "disable",
		    )) )
		}
		\$HTTP["url"] =~ "^/bare/" {
		    fastcgi.server = ( "/" => (( "socket" => "$d/bare.sock", "check-local" => "disable" )) )
		}
	EOF
	setsid taskset -c "$SCPU" lighttpd -D -f "$d/lighttpd.conf" >"$d/lighttpd.log" 2>&1 &
	wpid=$!
	PIDS+=("$wpid")
	wait_http "http://127.0.0.1:$port/none" 10
	kefu_fresh 1
	token=$(curl -s -X POST "http://127.0.0.1:$port/admin/login" -d username="$KEFU_ADMIN_USER" \
		-d password="$KEFU_ADMIN_PASSWORD" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
	[[ -n $token ]] || die "could not log in through the bench lighttpd"
	# the exact bytes kefu-api answers, for the bare app and the static files
	curl -s -d "" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/admin/ws/info" >"$d/info.body"
	curl -s -d "" "http://127.0.0.1:$port/api/link" >"$d/link.body"
	grep -q '"code":200' "$d/info.body" || die "POST /admin/ws/info failed: $(cat "$d/info.body")"
	grep -q '"ws_key"' "$d/link.body" || die "POST /api/link failed: $(cat "$d/link.body")"
	cp "$d/info.body" "$d/www/info.json"
	cp "$d/link.body" "$d/www/link.json"
	setsid taskset -c "$SCPU" "$BARE" --listen "$d/bare.sock" --threads "$API_WORKERS" \
		--map "/bare/admin/ws/info=$d/info.body" --map "/bare/api/link=$d/link.body" >"$d/bare.log" 2>&1 &
	bpid=$!
	PIDS+=("$bpid")
	for _ in $(seq 50); do
		[[ -S $d/bare.sock ]] && break
		sleep 0.1
	done
	cat >"$d/post.lua" <<-EOF
		wrk.method = "POST"
		wrk.body = ""
		wrk.headers["Authorization"] = "Bearer $token"
	EOF
	cat >"$d/get.lua" <<-EOF
		wrk.method = "GET"
	EOF
	printf 'info %s link %s\n' "$(stat -c %s "$d/info.body")" "$(stat -c %s "$d/link.body")" >"$d/sizes"
	for ((r = 1; r <= RUNS; r++)); do
		# info before link: every key link issues is a live visitor that info lists
		for name in kefu_info bare_info static_info kefu_link bare_link static_link; do
			case $name in
			kefu_info) url=/admin/ws/info method=post ;;
			bare_info) url=/bare/admin/ws/info method=post ;;
			static_info) url=/info.json method=get ;;
			kefu_link) url=/api/link method=post ;;
			bare_link) url=/bare/api/link method=post ;;
			static_link) url=/link.json method=get ;;
			esac
			record api "$name" "$r" taskset -c "$CCPU" wrk -t1 -c$WRK_CONNS -d"${WRK_SEC}s" --latency \
				-s "$d/$method.lua" "http://127.0.0.1:$port$url"
			grep -E 'Requests/sec|Non-2xx' "$RES/api/$name.$r.txt" | sed 's/^/    /' >&2 || true
		done
		# the next run's info starts from no visitors again
		rcli FLUSHDB >/dev/null
		token=$(curl -s -X POST "http://127.0.0.1:$port/admin/login" -d username="$KEFU_ADMIN_USER" \
			-d password="$KEFU_ADMIN_PASSWORD" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
		sed -i "s/Bearer .*\"/Bearer $token\"/" "$d/post.lua"
	done
	cp "$d/sizes" "$RES/api/sizes"
	stop_pid "$bpid"
	stop_pid "$wpid"
}

if want held; then scen_held; fi
if want held4; then scen_held4; fi
if want tput; then scen_tput; fi
# QUICK: the held runs made the latency step too
if want lat && ! { ((HELD_THEN_LAT)) && want held; }; then scen_lat; fi
if want slow; then scen_slow; fi
if want storm; then scen_storm; fi
if want api; then scen_api; fi

# ---------------------------------------------------------------- report

{
	echo "quick=$QUICK"
	echo "runs=$RUNS"
	echo "step_sec=$STEP_SEC"
	echo "drain_sec=$DRAIN"
	echo "lat_sec=$LAT_SEC"
	echo "wrk_sec=$WRK_SEC"
	echo "slow_sec=$SLOW_SEC"
	echo "held_idle=$HELD_IDLE"
	echo "held_pairs=$HELD_PAIRS"
	echo "lat_idle=$LAT_IDLE"
	echo "rates=$RATES"
	echo "api_workers=$API_WORKERS"
	echo "lat_with_held=$( ((HELD_THEN_LAT)) && want held && want lat && echo 1 || echo 0)"
	echo "storm_tail=$STORM_TAIL"
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "seconds=$(($(date +%s) - T_START))"
	echo "load_start=$LOAD_START"
	echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "ncpu=$NCPU"
	echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "nofile=$(ulimit -Hn)"
	echo "pin=servers (relays, kefu-api, lighttpd, node, nginx) on CPU $SCPU; load generator, wrk, Redis, MariaDB on CPU $CCPU"
	echo "kefu=$KEFU_REV at the start of the run; $KEFU_BUILT"
	echo "lws=$(dpkg-query -W -f='${Version}' libwebsockets-dev 2>/dev/null)"
	echo "libuv=$(pkg-config --modversion libuv 2>/dev/null)"
	echo "hiredis=$(pkg-config --modversion hiredis 2>/dev/null)"
	echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
	echo "mariadb=$(mariadbd --version | sed 's/.*Ver \([^ ]*\).*/\1/')"
	echo "lighttpd=$(lighttpd -v 2>&1 | head -n 1 | sed 's/ - .*//')"
	echo "nginx=$(nginx -v 2>&1 | sed 's/.*\///')"
	echo "nchan=$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
	echo "node=$(node --version)"
	echo "ws=$(node -p "require('$BENCH/peers/node_modules/ws/package.json').version")"
	echo "wrk=$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
	echo "libfcgi=$(dpkg-query -W -f='${Version}' libfcgi-dev 2>/dev/null)"
	echo "relay_nofile=$(grep -ho 'open files[^;]*' "$STACKDIR"/log/kefu-relay1.log 2>/dev/null | tail -n 1)"
} >"$RES/meta.txt"
node "$BENCH/report.mjs" "$RES" "$OUT" "$BENCH/NOTES.md"
# the tables (not the per-step details) on standard output
awk '/^<details>/ { d = 1 } /^<\/details>/ { d = 0; next } /^## Scenarios not/ { exit }
	d || /^## Machine/ { next } /^## / { print (n++ ? "\n" : "") $0 "\n"; next } /^\|/ { print }' "$OUT"
say "wrote $OUT ($(($(date +%s) - T_START)) s)"
