#!/usr/bin/env bash
# The flash-crowd benchmark with put+get on and then off, as the issue asks
# for both. Builds coral once; extra arguments go to both runs, e.g.
#
#   bash test/bench/flashcrowd/run.sh -nodes 100 -direct-timeout 5m
#
# Each run prints its full report; the last two lines are the runs'
# key=value summaries (put_get=true first).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin=${CORAL_BIN:-}
work=$(mktemp -d /tmp/coral-flashcrowd-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
  go build -o "$work/coral" ./app/cmd/coral
  bin=$work/coral
fi
# Each run's report goes to stdout as it comes and to a file for its last
# line (tee to /dev/stderr would truncate a redirected output file).
summaries=()
for pg in true false; do
  echo "=== put_get=$pg"
  go run ./test/bench/flashcrowd -bin "$bin" -putget="$pg" "$@" | tee "$work/run-$pg.txt"
  summaries+=("$(tail -n 1 "$work/run-$pg.txt")")
done
printf '%s\n' "${summaries[@]}"
