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
# Desktop tests (test/desktop): the real window on Xvfb read back by xwd and
# OCR, the status page in headless Chromium.
for p in x11-apps tesseract-ocr tesseract-ocr-eng chromium; do have_pkg "$p" || need+=("$p"); done
# The packaging test (make test-package): systemd-analyze checks the unit;
# coral-desktop's .deb depends on libgl1 and libx11-6, which dpkg -i does not
# fetch.
for p in systemd libgl1 libx11-6; do have_pkg "$p" || need+=("$p"); done
# make bench: the DNS benchmark compares Coral's server with NSD, driven by dnsperf.
for p in nsd dnsperf; do have_pkg "$p" || need+=("$p"); done
# Fetching the Go toolchain (below) when the machine has none.
for p in curl ca-certificates unzip; do have_pkg "$p" || need+=("$p"); done

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

# Go: any Go >= 1.21 fetches the toolchain go.mod names by itself
# (GOTOOLCHAIN=auto). Debian 12's golang-go is 1.19, too old for that, so a
# machine without a usable Go gets go.mod's release from the Go module proxy
# (the toolchain is published there as the module golang.org/toolchain),
# unpacked into /usr/local/go, where the Makefile looks for it.
export PATH="$PATH:/usr/local/go/bin"
go_ok() {
  local v
  v=$(go env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [ "${v%%.*}" -gt 1 ] 2>/dev/null && return 0
  v=${v#*.}
  [ "${v%%[!0-9]*}" -ge 21 ] 2>/dev/null
}
if ! go_ok; then
  if [ "$(id -u)" != 0 ]; then
    echo "coral: Go 1.21 or newer is needed (https://go.dev/dl/); run as root to have it installed" >&2
    exit 1
  fi
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$(dirname "$0")/../go.mod")
  arch=$(dpkg --print-architecture)
  proxy=${GOPROXY:-https://proxy.golang.org}
  proxy=${proxy%%,*}
  zip="$proxy/golang.org/toolchain/@v/v0.0.1-go$want.linux-$arch.zip"
  echo "coral: installing Go $want into /usr/local/go (from $zip) ..."
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/go.zip" "$zip"
  unzip -q "$tmp/go.zip" -d "$tmp"
  rm -rf /usr/local/go
  mv "$tmp/golang.org/toolchain@v0.0.1-go$want.linux-$arch" /usr/local/go
  chmod -R a+rX /usr/local/go
  chmod a+x /usr/local/go/bin/* /usr/local/go/pkg/tool/*/*
  go_ok || { echo "coral: go is not usable after install" >&2; exit 1; }
fi
