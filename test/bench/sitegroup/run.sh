#!/usr/bin/env bash
# The site-group benchmark on real coral processes (see main.go). Builds
# coral unless CORAL_BIN names a binary; the last line is the key=value summary.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec go run ./test/bench/sitegroup "$@"
