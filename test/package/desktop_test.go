package pkgtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nfpmMod builds the single coral package of before the split; the same
// pin as packaging/build-packages.sh.
const nfpmMod = "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0"

// oldVersion is the single package's: a build of main before the split, in
// the version scheme of packaging/build-packages.sh.
const oldVersion = "0.1.0+git20261201000000.ea4b402"

// builtDebs are the coral and coral-desktop .debs `make test-package` built;
// the test skips (saying why) where it cannot install them.
func builtDebs(t *testing.T) (coral, desktop string) {
	t.Helper()
	coral, desktop = os.Getenv("CORAL_DEB"), os.Getenv("CORAL_DESKTOP_DEB")
	if coral == "" || desktop == "" {
		t.Skip("package: set CORAL_DEB and CORAL_DESKTOP_DEB to the built .debs (make test-package builds them)")
	}
	if os.Geteuid() != 0 {
		t.Skipf("package: installs the .debs system-wide, needs root: running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("package: needs dpkg (a Debian machine)")
	}
	refuseIfInstalled(t, "coral", "coral-desktop")
	t.Cleanup(func() { run(t, "dpkg", "--purge", "coral-desktop", "coral") })
	return coral, desktop
}

// refuseIfInstalled stops the test where one of pkgs is on this machine
// (installed, half-installed or its config files left): the test would
// replace or purge it. dpkg remembers a package it failed to install as
// "not-installed"; that one is not there.
func refuseIfInstalled(t *testing.T, pkgs ...string) {
	t.Helper()
	for _, pkg := range pkgs {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
		if err == nil && !strings.HasSuffix(string(out), " not-installed") {
			t.Fatalf("%s is already on this machine (%s): the test would replace it", pkg, out)
		}
	}
}

// coral-desktop installs over coral: its binary has the window, the menu
// entry starts it, and it names the exact coral it goes with.
func TestDesktopDebOverHeadless(t *testing.T) {
	coral, desktop := builtDebs(t)
	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", desktop, "Version"))
	if v := strings.TrimSpace(run(t, "dpkg-deb", "-f", coral, "Version")); v != version {
		t.Fatalf("coral is %s, coral-desktop %s: make package builds both from one commit", v, version)
	}
	run(t, "dpkg", "-i", coral)
	run(t, "dpkg", "-i", desktop)

	control := run(t, "dpkg-deb", "-f", desktop, "Depends", "Replaces", "Breaks")
	for _, want := range []string{
		"Depends: coral (= " + version + ")", "libgl1", "libx11-6",
		"Replaces: coral (<< " + version + ")", "Breaks: coral (<< " + version + ")",
	} {
		if !strings.Contains(control, want) {
			t.Errorf("coral-desktop's control lacks %q:\n%s", want, control)
		}
	}
	checkGlibcDepends(t, "coral-desktop", desktopBin)
	if ldd := run(t, "ldd", desktopBin); !strings.Contains(ldd, "libGL") {
		t.Errorf("ldd %s has no libGL: not the build with the window?\n%s", desktopBin, ldd)
	}
	checkHasWindow(t, desktopBin)
	checkDesktopEntry(t)
	// The headless coral stays what it is beside it, but hands plain
	// `coral` in a desktop session over to it.
	checkHeadless(t)
	checkPlainCoral(t, true)

	run(t, "dpkg", "--purge", "coral-desktop")
	for _, p := range []string{desktopBin, desktopEntry, iconPath} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after purging coral-desktop", p)
		}
	}
	if _, err := os.Stat("/usr/bin/coral"); err != nil {
		t.Errorf("purging coral-desktop took coral's binary: %v", err)
	}
	checkPlainCoral(t, false)
}

// checkHasWindow: bin is the build with the window: `gui -h` lists the
// window's flags (and opens no window).
func checkHasWindow(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "gui", "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-attach") || strings.Contains(string(out), "no window") {
		t.Errorf("%s gui -h: %v\n%s\nwant the window's flags (-attach)", bin, err, out)
	}
}

// checkDesktopEntry: the installed menu entry's Exec resolves to the binary
// with the window, and its Icon to the installed icon.
func checkDesktopEntry(t *testing.T) {
	t.Helper()
	f, err := os.Open(desktopEntry)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			fields[k] = v
		}
	}
	exe := strings.Fields(fields["Exec"])
	if len(exe) == 0 {
		t.Fatalf("%s has no Exec", desktopEntry)
	}
	path, err := exec.LookPath(exe[0])
	if err != nil || path != desktopBin {
		t.Errorf("Exec=%s: %q resolves to %q (%v), want %s", fields["Exec"], exe[0], path, err, desktopBin)
	}
	if out, err := exec.Command(path, append(exe[1:], "-h")...).CombinedOutput(); err != nil || !strings.Contains(string(out), "-attach") {
		t.Errorf("Exec=%s -h: %v\n%s", fields["Exec"], err, out)
	}
	if icon := strings.TrimSuffix(filepath.Base(iconPath), ".png"); fields["Icon"] != icon {
		t.Errorf("Icon=%s, want %s (the installed icon)", fields["Icon"], icon)
	}
}

// An upgrade from the single coral package of before the split (the window,
// the menu entry and the icon in one package): to the pair in one go (a
// desktop), and to coral alone and later coral-desktop (a server, then a
// change of mind). dpkg reports no file conflict, the moved files end up
// coral-desktop's, /usr/bin/coral becomes the headless build, and the
// service user and the edited config survive.
func TestUpgradeFromSingleCoralPackage(t *testing.T) {
	coral, desktop := builtDebs(t)
	single := buildSinglePackage(t)
	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", coral, "Version"))
	if err := exec.Command("dpkg", "--compare-versions", oldVersion, "lt", version).Run(); err != nil {
		t.Fatalf("the single package's version %s does not sort before %s", oldVersion, version)
	}
	for _, tc := range []struct {
		name  string
		steps [][]string // dpkg's arguments, one run a step
		// The first step says where the window went: coral is unpacked
		// while the old one still owns the menu entry.
		saysMoved bool
	}{
		{"to the pair at once", [][]string{{"-i", coral, desktop}}, true},
		// dpkg unpacks coral-desktop while the old coral is still there and
		// owns the menu entry and the icon: Breaks has the old coral
		// deconfigured (apt passes --auto-deconfigure, plain dpkg -i
		// refuses), and only Replaces lets coral-desktop take the files.
		{"to the pair at once, coral-desktop first", [][]string{{"--auto-deconfigure", "-i", desktop, coral}}, false},
		{"to coral, then coral-desktop", [][]string{{"-i", coral}, {"-i", desktop}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(t, "dpkg", "-i", single)
			if owner := run(t, "dpkg-query", "-S", desktopEntry); !strings.HasPrefix(owner, "coral:") {
				t.Fatalf("the single package does not own the menu entry: %s", owner)
			}
			uid := strings.TrimSpace(run(t, "id", "-u", "coral"))
			run(t, "sh", "-c", `printf '\n# kept across the upgrade\n' >>`+configPath)
			for i, args := range tc.steps {
				out := run(t, "dpkg", args...)
				if i == 0 {
					checkHeadless(t)
					if says := strings.Contains(out, movedWindow); says != tc.saysMoved {
						t.Errorf("dpkg %s: says where the window went: %v, want %v:\n%s", strings.Join(args, " "), says, tc.saysMoved, out)
					}
				}
				if i == 0 && len(tc.steps) > 1 {
					// coral alone: the window's files went with the old package.
					for _, p := range []string{desktopEntry, iconPath, desktopBin} {
						if _, err := os.Stat(p); err == nil {
							t.Errorf("%s still there after upgrading to coral alone", p)
						}
					}
				}
			}
			checkUpgraded(t, version, uid)
			run(t, "dpkg", "--purge", "coral-desktop", "coral")
		})
	}
}

// checkUpgraded: both packages installed at version, the moved files
// coral-desktop's, the service user and the edited config kept.
func checkUpgraded(t *testing.T, version, uid string) {
	t.Helper()
	for _, pkg := range []string{"coral", "coral-desktop"} {
		if st := run(t, "dpkg-query", "-W", "-f=${Status} ${Version}", pkg); st != "install ok installed "+version {
			t.Errorf("%s: %s, want installed %s", pkg, st, version)
		}
	}
	for _, p := range []string{desktopEntry, iconPath} {
		if owner := run(t, "dpkg-query", "-S", p); !strings.HasPrefix(owner, "coral-desktop:") {
			t.Errorf("%s belongs to %s, want coral-desktop", p, owner)
		}
	}
	checkHasWindow(t, desktopBin)
	checkDesktopEntry(t)
	checkPlainCoral(t, true)
	if got := strings.TrimSpace(run(t, "id", "-u", "coral")); got != uid {
		t.Errorf("the coral user is uid %s after the upgrade, was %s", got, uid)
	}
	if b, err := os.ReadFile(configPath); err != nil || !strings.Contains(string(b), "# kept across the upgrade") {
		t.Errorf("%s lost the volunteer's edit: %v", configPath, err)
	}
}

// buildSinglePackage builds, with nfpm from the Go module proxy, the single
// coral .deb as packaging/nfpm.yaml made it before the split
// (testdata/single), around the GUI binary of this tree (make build).
func buildSinglePackage(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin/coral")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the single package holds the GUI binary: %v (make build)", err)
	}
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	glibc := strings.TrimSpace(run(t, "go", "run", "../../packaging/glibcmin", bin))
	dir := t.TempDir()
	cmd := exec.Command("go", "run", nfpmMod, "package", "-f", "test/package/testdata/single/nfpm.yaml", "-p", "deb", "-t", dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "ARCH="+arch, "VERSION="+oldVersion, "GLIBC_MIN="+glibc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nfpm (the single package): %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "coral_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("nfpm made %v", debs)
	}
	return debs[0]
}
