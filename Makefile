# Coral's build. The README's two commands are `make run` and `make test`;
# both install what is missing on a fresh Debian machine (as root) first.

# packaging/install-deps.sh puts Go in /usr/local/go when the machine has none.
export PATH := $(PATH):/usr/local/go/bin
GO       ?= go
BIN      := bin/coral
# The coral .deb's binary: no window (-tags nogui), static (CGO_ENABLED=0).
HEADLESS_BIN := bin/coral-headless
PKG      := github.com/coralcdn/coral
# The release number (FyneApp.toml) and the commit: run-state documents'
# min_version compares the release number.
APP_VERSION := $(shell sed -n 's/^Version = "\(.*\)"$$/\1/p' FyneApp.toml)
VERSION  ?= $(APP_VERSION)+$(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
CONFIG   ?=
# Packages whose tests also run under the race detector in `make test`: the
# concurrent core. (app and p2p would race-compile all of libp2p and Fyne,
# which costs CI minutes; their concurrency is exercised by the multi-process
# tests.)
RACE_PKGS := ./core/store/ ./core/shaping/ ./core/proxy/ ./core/coop/ ./core/dsht/... ./core/dnsserver/ ./core/locality/ ./core/httpcache/ ./core/coralurl/ ./core/runstate/

.PHONY: all deps build build-headless run serve test vet fmt-check tidy-check bench demo screenshots clean package test-package

all: build

# deps installs the system packages the build, the GUI and the tests need.
deps:
	@bash packaging/install-deps.sh

build: deps
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./app/cmd/coral

# build-headless: coral without the window, for servers: links no Fyne,
# OpenGL or X11 (cgo off), so it runs on a machine without them.
build-headless: deps
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -tags nogui -ldflags '$(LDFLAGS)' -o $(HEADLESS_BIN) ./app/cmd/coral

# run: one node on its embedded Badger store; the GUI when a display is
# present, headless otherwise. CONFIG=path/to/coral.toml to use a config file.
run: build
	./$(BIN) $(if $(CONFIG),-config $(CONFIG))

# serve: always headless.
serve: build
	./$(BIN) serve $(if $(CONFIG),-config $(CONFIG))

vet:
	$(GO) vet ./...

# tidy-check: go.mod and go.sum say exactly what the code imports.
tidy-check:
	$(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# test: everything CI checks. The multi-process tests run bin/coral
# (CORAL_BIN) instead of linking their own. build shares vet's and the
# tests' compiled packages (no -trimpath: it would compile every dependency
# a second time, minutes on a fresh machine).
#
# test/netns runs alone, after the rest: it adds a veth to this host for the
# time of the test, and mDNS in tests running beside it (p2p's LAN
# discovery) then announces on that interface and misses its peers.
test: deps fmt-check tidy-check vet build
	CORAL_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e '/test/netns$$' -e '/test/package$$')
	CORAL_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 10m ./test/netns/
	$(GO) test -count=1 -tags nogui -run 'TestCommands|TestHeadlessBuild' ./app/cmd/coral/
	$(GO) test -count=1 -race -timeout 20m -short $(RACE_PKGS)

# package: the .debs (coral, coral-desktop) and the desktop bundle in dist/
# (packaging/build-packages.sh).
package: build build-headless
	GO=$(GO) BIN=$(BIN) HEADLESS_BIN=$(HEADLESS_BIN) bash packaging/build-packages.sh

# test-package: builds the packages, then installs, runs and purges the .debs
# on this machine (root; CI's throwaway machine). Not in `make test`: it
# changes the system.
test-package: package
	CORAL_DEB=$(abspath $(wildcard dist/coral_*.deb)) CORAL_DESKTOP_DEB=$(abspath $(wildcard dist/coral-desktop_*.deb)) CORAL_BUNDLE=$(abspath $(wildcard dist/coral-desktop-*.tar.xz)) $(GO) test -count=1 -timeout 10m ./test/package/

# bench: benchmarks that print figures (never part of `make test`).
bench: build
	bash test/bench/cachehit/run.sh
	$(GO) run ./test/bench/dnsqps
	$(GO) run ./test/sim -nodes 1000
	CORAL_BIN=$(BIN) bash test/bench/flashcrowd/run.sh
	CORAL_BIN=$(BIN) bash test/bench/shaping/run.sh
	CORAL_BIN=$(BIN) bash test/bench/sitegroup/run.sh

# demo: a small local network, an origin and a crowd, live.
demo: build
	$(GO) run ./test/demo -bin $(BIN)

# screenshots: the README's pictures, into assets/screenshots: every tab of
# the window in the light and dark themes (Fyne's test driver), the real
# window under Xvfb and the status page in headless Chromium.
SHOTS := $(abspath assets/screenshots)
screenshots: build
	@mkdir -p $(SHOTS)
	CORAL_GUI_SHOTS=$(SHOTS) $(GO) test -count=1 -run TestNothingCutOff ./gui/
	CORAL_SHOTS=$(SHOTS) CORAL_BIN=$(abspath $(BIN)) $(GO) test -count=1 -run 'TestRealWindowUnderXvfb|TestStatusPageInChromium' ./test/desktop/

clean:
	rm -rf bin dist
