#!/usr/bin/env bash
# Runs every fuzz target of the repository (every `func FuzzXxx` in a
# *_test.go file) for FUZZTIME each, one after the other, and prints one line
# per target with the executions it reached. A crash stops the script with
# the failing input written under the package's testdata/fuzz/, as
# `go test -fuzz` leaves it. FUZZ_TARGETS, a regular expression, narrows the
# targets (matched against "<package dir> <FuzzName>"); FUZZ_TIMEOUT (2h)
# bounds each target's run, FUZZ_MINIMIZETIME (5s) the minimizing of each new
# input. Logs: $LOCAL/fuzz/.
set -euo pipefail

FUZZTIME=${FUZZTIME:-30s}
FUZZ_TARGETS=${FUZZ_TARGETS:-.}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-2h}
FUZZ_MINIMIZETIME=${FUZZ_MINIMIZETIME:-5s}
LOG_DIR=${LOCAL:-.local}/fuzz
mkdir -p "$LOG_DIR"

targets=$(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' |
	sed -E 's#^(.*)/[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#./\1 \2#' | sort -u |
	grep -E -- "$FUZZ_TARGETS" || true)
if [ -z "$targets" ]; then
	echo "no fuzz target matches FUZZ_TARGETS=$FUZZ_TARGETS" >&2
	exit 1
fi

printf '%-22s %-26s %12s %s\n' package target executions result
status=0
while read -r pkg name; do
	log="$LOG_DIR/${pkg//\//_}.$name.log"
	result=ok
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZ_MINIMIZETIME" -timeout "$FUZZ_TIMEOUT" "$pkg" >"$log" 2>&1 || { result="FAILED (see $log)"; status=1; }
	# The last progress line carries the total: "fuzz: elapsed: 1m0s, execs: 123 (2/sec), ...".
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	printf '%-22s %-26s %12s %s\n' "${pkg#./}" "$name" "${execs:-0}" "$result"
done <<<"$targets"
exit $status
