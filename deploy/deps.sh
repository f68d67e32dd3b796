#!/bin/bash
# Install the Debian packages kefu needs to build, test and run its local
# stack, and the tests' npm packages. Quiet when nothing is missing.
#   deploy/deps.sh        (as root to install; otherwise only checks)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pkgs=(
	build-essential pkg-config
	libfcgi-dev libwebsockets-dev libwebsockets-evlib-uv libuv1-dev
	libmariadb-dev libmariadb-dev-compat libhiredis-dev libjson-c-dev
	libiniparser-dev librdkafka-dev librabbitmq-dev libcriterion-dev
	libsodium-dev nettle-dev uthash-dev libsystemd-dev
	mariadb-server mariadb-client redis-server rabbitmq-server lighttpd apache2 spawn-fcgi
	curl
)

# A node >= 18 from elsewhere (e.g. NodeSource) must not be replaced by
# Debian's nodejs: the packages conflict.
node_major=0
if command -v node >/dev/null 2>&1; then
	node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
fi
if [[ $node_major =~ ^[0-9]+$ ]] && ((node_major >= 18)); then
	if ! command -v npm >/dev/null 2>&1; then
		echo "deps.sh: node $node_major is on PATH but npm is not; install npm with that node" >&2
	fi
else
	pkgs+=(nodejs npm)
fi

installed() {
	# Not `dpkg -s | grep -q`: with pipefail, grep's early exit can kill dpkg
	# with SIGPIPE (long entries such as apache2's), so it looked missing.
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == 'install ok installed' ]]
}

missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
	if ((EUID != 0)); then
		echo "deps.sh: missing Debian packages (run as root to install): ${missing[*]}" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}" >&2
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ -f $root/tests/package.json && ! -d $root/tests/node_modules ]]; then
	echo "deps.sh: npm install in tests/" >&2
	(cd "$root/tests" && npm install --no-audit --no-fund)
fi
