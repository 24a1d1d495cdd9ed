#!/usr/bin/env bash
# Installs what building, running and testing Coral needs on Debian, when it
# is missing. Safe to run again: it does nothing when everything is present.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# Fyne (the GUI) links against OpenGL and X11 through cgo.
for p in gcc pkg-config libgl1-mesa-dev xorg-dev; do have_pkg "$p" || need+=("$p"); done
# Multi-host tests (network namespaces, non-transitive links) and benchmarks.
for p in iproute2 iptables wrk nginx-light xvfb; do have_pkg "$p" || need+=("$p"); done
command -v go >/dev/null 2>&1 || need+=(golang-go)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "coral: missing packages: ${need[*]}" >&2
    echo "coral: run as root, or install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "coral: installing ${need[*]} (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian's Go may be older than go.mod wants; Go >= 1.21 then fetches the
# right toolchain from the module proxy by itself (GOTOOLCHAIN=auto).
if ! go version >/dev/null 2>&1; then
  echo "coral: go is not usable after install" >&2
  exit 1
fi
