#!/bin/bash
# `make run`: start the local stack in var/ (or $KEFU_RUN_DIR), print how to
# use it, stay in the foreground until Ctrl-C or SIGTERM, then stop it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${KEFU_RUN_DIR:-$root/var}
stack=$root/deploy/stack

stopping=0
sleeper=
stop() {
	((stopping)) && return
	stopping=1
	[[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null
	true
	echo
	echo "kefu: stopping the stack in $dir"
	"$stack" down "$dir" || true
}
trap stop EXIT
trap 'exit 0' INT TERM

"$stack" up "$dir" >/dev/null
# shellcheck disable=SC1091
. "$dir/stack.env"

cat <<MSG

kefu is running (web server: $KEFU_WEB, files in $KEFU_DIR)

  API:        $KEFU_HTTP
  WebSocket:  $KEFU_WS  (relay nodes: $KEFU_RELAY_URLS)
  admin user: $KEFU_ADMIN_USER
  password:   $KEFU_ADMIN_PASSWORD
  config:     $KEFU_CONFIG
  logs:       $KEFU_DIR/log/

Try it:
  curl -s $KEFU_HTTP/healthz
  curl -s -c /tmp/kefu.cookies -X POST $KEFU_HTTP/admin/login \\
       -d username=$KEFU_ADMIN_USER -d password=$KEFU_ADMIN_PASSWORD
  curl -s -b /tmp/kefu.cookies $KEFU_HTTP/admin/me
  curl -s -b /tmp/kefu.cookies $KEFU_HTTP/admin/logout

Chat from two more terminals: see "Chat from two terminals" in README.md
(node tests/wscat.mjs URL). The same settings are in $dir/stack.env.
Press Ctrl-C to stop.
MSG

# Wait without a busy loop; `wait` returns when a trapped signal arrives.
sleep infinity &
sleeper=$!
wait "$sleeper" || true
