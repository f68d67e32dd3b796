#!/usr/bin/env bash
# Integration tests: for each web server (lighttpd, apache; or only
# $KEFU_TEST_WEB), start a private stack in tests/var-$WEB with deploy/stack,
# run every tests/integration/*.test.mjs against it one file at a time (in
# name order, so a file that stops Redis never overlaps another), and stop
# the stack. Prints "integration: N passed, N failed" (individual tests) and
# exits non-zero if anything failed.
#
#   bash tests/run-integration.sh
#   KEFU_TEST_WEB=apache bash tests/run-integration.sh
#   KEFU_TEST_FILES='10-login' bash tests/run-integration.sh   (name filter)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$ROOT/deploy/stack
TESTS=$ROOT/tests/integration
WEBS=${KEFU_TEST_WEB:-lighttpd apache}
FILE_TIMEOUT=${KEFU_TEST_TIMEOUT:-300}

passed=0
failed=0
current_dir=
out=$(mktemp)

cleanup() {
    if [ -n "$current_dir" ]; then
        "$STACK" down "$current_dir" >/dev/null 2>&1 || true
        current_dir=
    fi
    rm -f "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
    local dir=$1 f
    shopt -s nullglob
    for f in "$dir"/log/*.log; do
        echo "----- tail of $f"
        tail -n 40 "$f" || true
    done
    shopt -u nullglob
}

# The count after "ℹ WORD " in node's spec summary, or empty.
summary_count() {
    sed -e 's/\x1b\[[0-9;]*m//g' "$out" | sed -n "s/^ℹ $1 \([0-9][0-9]*\)\$/\1/p" | tail -n 1
}

if ! command -v node >/dev/null; then
    echo "run-integration: node is not installed" >&2
    exit 1
fi
if [ ! -x "$STACK" ]; then
    echo "run-integration: $STACK is missing or not executable" >&2
    exit 1
fi

shopt -s nullglob
files=("$TESTS"/*.test.mjs)
shopt -u nullglob
if [ -n "${KEFU_TEST_FILES:-}" ]; then
    kept=()
    for f in "${files[@]}"; do
        case $(basename "$f") in *"$KEFU_TEST_FILES"*) kept+=("$f") ;; esac
    done
    files=("${kept[@]}")
fi
if [ ${#files[@]} -eq 0 ]; then
    echo "run-integration: no test files in $TESTS" >&2
    echo "integration: 0 passed, 1 failed"
    exit 1
fi

for web in $WEBS; do
    # one directory per run, so two runs at once (developers, CI) never share
    # a stack; KEFU_TEST_VAR fixes it (e.g. to keep the logs of a failure)
    dir=${KEFU_TEST_VAR:-$ROOT/tests/var-run.$$}-$web
    echo "=== $web: starting the stack in $dir"
    if [ -e "$dir" ]; then
        "$STACK" down "$dir" >/dev/null 2>&1 || true
        rm -rf "$dir"
    fi
    current_dir=$dir
    if ! KEFU_WEB=$web KEFU_EXTRA_INI=$TESTS/test.ini "$STACK" up "$dir"; then
        echo "=== $web: FAILED to start the stack"
        show_logs "$dir"
        failed=$((failed + 1))
        "$STACK" down "$dir" >/dev/null 2>&1 || true
        current_dir=
        continue
    fi

    grep -v -e PASSWORD "$dir/stack.env" | sed 's/^/    /' || true

    for f in "${files[@]}"; do
        name=$(basename "$f")
        echo "=== $web: $name"
        set +e
        (
            set -a
            # shellcheck disable=SC1091
            . "$dir/stack.env"
            set +a
            export KEFU_STACK="$STACK" KEFU_STACK_DIR="$dir" NO_COLOR=1
            cd "$ROOT"
            timeout "$FILE_TIMEOUT" node --test --test-reporter=spec "$f"
        ) >"$out" 2>&1
        rc=$?
        set -e
        cat "$out"
        p=$(summary_count pass)
        n=$(summary_count fail)
        c=$(summary_count cancelled)
        p=${p:-0}
        n=$(( ${n:-0} + ${c:-0} ))
        if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
            # node died, timed out, or printed no summary: count the file
            n=1
            echo "=== $web: $name exited with status $rc"
        fi
        if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$n" -eq 0 ]; then
            p=1     # passed, but no summary could be read
        fi
        passed=$((passed + p))
        failed=$((failed + n))
        echo "=== $web: $name: $p passed, $n failed"
        if [ "$n" -gt 0 ]; then
            show_logs "$dir"
        fi
    done

    echo "=== $web: stopping the stack"
    if "$STACK" down "$dir"; then
        # also the second stack 50-durable makes (it stops it itself)
        [ -n "${KEFU_TEST_VAR:-}" ] || rm -rf "$dir" "$dir-durable"
    else
        echo "=== $web: 'deploy/stack down' failed" >&2
    fi
    current_dir=
done

echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
