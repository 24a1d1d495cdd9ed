#!/usr/bin/env bash
# Builds Coral's packages into dist/ from bin/coral (the GUI build, `make
# build`) and bin/coral-headless (-tags nogui, `make build-headless`):
#   dist/coral_<version>_<arch>.deb            the headless node, for servers and desktops (nfpm)
#   dist/coral-desktop_<version>_<arch>.deb    the window on top of it (nfpm; Depends: coral)
#   dist/coral-desktop-<version>-linux-<arch>.tar.xz  a desktop bundle (fyne package)
# Both tools run at pinned versions from the Go module proxy (`go run`), so
# nothing is installed and go.mod does not grow.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-bin/coral}
HEADLESS_BIN=${HEADLESS_BIN:-bin/coral-headless}
NFPM_MOD=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
FYNE_MOD=fyne.io/tools/cmd/fyne@v1.7.4

app_version=$(sed -n 's/^Version = "\(.*\)"$/\1/p' FyneApp.toml)
# dpkg compares what follows "+git" as text: the commit time first, so a
# later build sorts later (a hash alone sorted lower in about half of
# consecutive commits, and apt refused the newer build as a downgrade).
git_version=$(git describe --always --dirty 2>/dev/null || echo dev)
git_time=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
version="${app_version}+git${git_time}.${git_version//-/.}"
[ -x "$BIN" ] || { echo "build-packages: $BIN is missing (make build)" >&2; exit 1; }
[ -x "$HEADLESS_BIN" ] || { echo "build-packages: $HEADLESS_BIN is missing (make build-headless)" >&2; exit 1; }
# nfpm's files name the binaries by these paths.
[ "$BIN" = bin/coral ] && [ "$HEADLESS_BIN" = bin/coral-headless ] ||
  { echo "build-packages: the .debs take bin/coral and bin/coral-headless" >&2; exit 1; }
# The coral .deb has no libc6 dependency: its binary must be static, which
# CGO_ENABLED=0 makes (ldd fails on a static binary).
if ldd "$HEADLESS_BIN" >/dev/null 2>&1; then
  echo "build-packages: $HEADLESS_BIN is dynamically linked; build it with CGO_ENABLED=0 (make build-headless)" >&2
  exit 1
fi
# The newest glibc symbol version bin/coral (the window) needs: coral-desktop
# depends on it, so an older system refuses it instead of failing at start.
glibc_min=$(GO="$GO" "$GO" run ./packaging/glibcmin "$BIN")
arch=$(dpkg --print-architecture 2>/dev/null || "$GO" env GOARCH)
mkdir -p dist
rm -f dist/coral_*.deb dist/coral-desktop_*.deb dist/coral-desktop-*.tar.xz

# nfpm expands the environment in most fields but not in deb.breaks, which
# names the version: the spec goes to nfpm with ${VERSION} written out.
trap 'rm -f dist/.nfpm*.yaml' EXIT
for spec in packaging/nfpm.yaml packaging/nfpm-desktop.yaml; do
  expanded="dist/.${spec##*/}"
  sed "s/\${VERSION}/$version/g" "$spec" >"$expanded"
  ARCH=$arch VERSION=$version GLIBC_MIN=$glibc_min "$GO" run "$NFPM_MOD" package -f "$expanded" -p deb -t dist/
done
rm -f dist/.nfpm*.yaml

# fyne package reads FyneApp.toml from the current directory and bumps its
# Build number in place; keep the committed file as it is.
cp FyneApp.toml dist/.FyneApp.toml.keep
trap 'mv -f dist/.FyneApp.toml.keep FyneApp.toml' EXIT
"$GO" run "$FYNE_MOD" package --os linux --exe "$BIN" --app-version "$app_version"
mv -f Coral.tar.xz "dist/coral-desktop-${version}-linux-${arch}.tar.xz"
ls -l dist/
