// Package pkgtest checks the packages as a user gets them: the desktop
// bundle's contents, and the .debs' contents, the coral package's systemd
// unit, and real installs, upgrades, runs and purges on this machine: the
// headless coral .deb alone (no window, nothing of OpenGL or X11), the
// coral-desktop .deb over it, and the pair over the single coral package of
// before the split. `make test-package` builds the packages and runs it
// (CORAL_DEB, CORAL_DESKTOP_DEB); it needs root and dpkg, and changes the
// system for the test's duration, so it is meant for CI's throwaway machine.
package pkgtest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	unitPath   = "/usr/lib/systemd/system/coral.service"
	configPath = "/etc/coral/coral.toml"
	netnsName  = "coral-pkgtest"
)

const (
	desktopBin   = "/usr/bin/coral-desktop"
	desktopEntry = "/usr/share/applications/net.coralcdn.coral.desktop"
	iconPath     = "/usr/share/icons/hicolor/256x256/apps/net.coralcdn.coral.png"
	// What `coral gui` says in the headless build (app/cmd/coral/gui_stub.go).
	noWindow = "this build has no window; install coral-desktop"
	// What the coral .deb says when it replaces the single package of
	// before the split (packaging/deb/preinstall.sh).
	movedWindow = "the window is now in the coral-desktop package"
)

// wantFiles are the paths the coral .deb must install.
var wantFiles = []string{
	"./usr/bin/coral",
	"." + unitPath,
	"." + configPath,
}

// desktopFiles are coral-desktop's, and must not be in the coral .deb (the
// two packages would conflict).
var desktopFiles = []string{"." + desktopBin, "." + desktopEntry, "." + iconPath}

// wantUnit are settings the hardened unit must carry.
var wantUnit = []string{
	"User=coral", "StateDirectory=coral", "ConfigurationDirectory=coral",
	"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
	"NoNewPrivileges=true", "ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true",
}

func TestDebInstallRunPurge(t *testing.T) {
	deb := os.Getenv("CORAL_DEB")
	if deb == "" {
		t.Skip("package: set CORAL_DEB to a built .deb (make test-package builds one)")
	}
	if os.Geteuid() != 0 {
		t.Skipf("package: installs the .deb system-wide, needs root: running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("package: needs dpkg (a Debian machine)")
	}
	refuseIfInstalled(t, "coral", "coral-desktop")
	checkContents(t, deb)

	if out := run(t, "dpkg", "-i", deb); strings.Contains(out, movedWindow) {
		t.Errorf("a fresh install talks of an upgrade: %s", out)
	}
	purged := false
	purge := func() {
		if !purged {
			purged = true
			run(t, "dpkg", "--purge", "coral")
		}
	}
	t.Cleanup(purge)

	if out := run(t, "/usr/bin/coral", "version"); !strings.HasPrefix(out, "coral ") {
		t.Errorf("coral version: %q", out)
	}
	uid := strings.TrimSpace(run(t, "id", "-u", "coral"))
	if uid == "0" {
		t.Error("the coral user is root")
	}
	checkGlibcDepends(t, "coral", "/usr/bin/coral")
	checkHeadless(t)
	checkPlainCoral(t, false)
	// An upgrade (here: the same package again) runs prerm upgrade and
	// postinst configure <old version>: it keeps the service user.
	run(t, "dpkg", "-i", deb)
	if again := strings.TrimSpace(run(t, "id", "-u", "coral")); again != uid {
		t.Errorf("the coral user changed on upgrade: uid %s, was %s", again, uid)
	}
	verifyUnit(t)
	// README, "Start a network": the operator key pair, the public key
	// appended to the packaged config.
	keyFile := filepath.Join(t.TempDir(), "coral-operator.key")
	run(t, "sh", "-c", `printf '\n[operator]\nkey = "%s"\n' "$(coral operator keygen -out "$1")" | tee -a /etc/coral/coral.toml`, "sh", keyFile)
	runService(t, execStart(t), keyFile)

	purge()
	for _, p := range []string{"/usr/bin/coral", unitPath, "/etc/coral", "/var/lib/coral"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after purge", p)
		}
	}
	if err := exec.Command("id", "coral").Run(); err == nil {
		t.Error("user coral left behind after purge")
	}
}

// checkGlibcDepends: an installed package whose binary is dynamic depends
// on a libc6 at least as new as the newest glibc symbol the binary needs,
// so an older system refuses the package instead of the binary failing at
// start. A static binary needs no libc6.
func checkGlibcDepends(t *testing.T, pkg, bin string) {
	if !isDynamic(t, bin) {
		return
	}
	need := strings.TrimSpace(run(t, "go", "run", "../../packaging/glibcmin", bin))
	depends := run(t, "dpkg-query", "-W", "-f=${Depends}", pkg)
	if !strings.Contains(depends, "libc6 (>= "+need+")") {
		t.Errorf("%s Depends: %s; want libc6 (>= %s)", pkg, depends, need)
	}
}

// isDynamic reports whether bin asks for a dynamic loader.
func isDynamic(t *testing.T, bin string) bool {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// checkPlainCoral: plain `coral` in a desktop session hands over to
// coral-desktop when that is installed (the single package's `coral` opened
// the window, and autostart entries name /usr/bin/coral), else runs
// headless and says why. A Wayland display that does not exist fails the
// window build's display probe, so no window opens; a config file that does
// not exist ends either run before a node starts.
func checkPlainCoral(t *testing.T, handsOver bool) {
	t.Helper()
	cmd := exec.Command("/usr/bin/coral", "-config", "/nonexistent/coral-pkgtest.toml")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "WAYLAND_DISPLAY=coral-pkgtest-none")
	out, err := cmd.CombinedOutput()
	want := noWindow // the headless build
	if handsOver {
		want = "`coral serve` skips this check" // the window build's display probe
	}
	if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "coral-pkgtest.toml") {
		t.Errorf("plain coral in a desktop session (coral-desktop installed: %v): %v\n%s\nwant %q and the missing config", handsOver, err, out, want)
	}
}

// checkHeadless: the installed coral is the build without the window. It
// depends on nothing of OpenGL or X11 and links none of it, so a server
// without Mesa runs it (checked this way, not by removing libgl1 from a
// machine other tests open windows on); `coral gui` says what to install.
func checkHeadless(t *testing.T) {
	depends := run(t, "dpkg-query", "-W", "-f=${Depends}", "coral")
	for _, lib := range []string{"libgl", "libx11", "libegl", "libgles", "mesa"} {
		if strings.Contains(strings.ToLower(depends), lib) {
			t.Errorf("coral Depends: %s; want nothing of %s", depends, lib)
		}
	}
	ldd, _ := exec.Command("ldd", "/usr/bin/coral").CombinedOutput() // fails on a static binary
	for _, lib := range []string{"libGL", "libX11", "libglfw", "libEGL"} {
		if strings.Contains(string(ldd), lib) {
			t.Errorf("ldd /usr/bin/coral:\n%s\nwant no %s", ldd, lib)
		}
	}
	out, err := exec.Command("/usr/bin/coral", "gui").CombinedOutput()
	if err == nil || !strings.Contains(string(out), noWindow) {
		t.Errorf("coral gui: %v %q; want a non-zero exit saying %q", err, out, noWindow)
	}
}

// A person's own login named coral is not taken over as the daemon's user:
// the install stops with a message saying what to do, the account keeps
// its files, and purging the half-installed package leaves it alone.
func TestDebLeavesAPersonalCoralAccountAlone(t *testing.T) {
	deb := os.Getenv("CORAL_DEB")
	if deb == "" {
		t.Skip("package: set CORAL_DEB to a built .deb (make test-package builds one)")
	}
	if os.Geteuid() != 0 {
		t.Skipf("package: installs the .deb system-wide, needs root: running as uid %d", os.Geteuid())
	}
	if err := exec.Command("id", "coral").Run(); err == nil {
		t.Fatal("a user coral exists on this machine: the test would change it")
	}
	home := filepath.Join(t.TempDir(), "coral-home")
	run(t, "useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", "coral")
	t.Cleanup(func() {
		_ = exec.Command("dpkg", "--purge", "coral").Run()
		_ = exec.Command("userdel", "--remove", "coral").Run()
	})
	uid := strings.TrimSpace(run(t, "id", "-u", "coral"))

	out, err := exec.Command("dpkg", "-i", deb).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not Coral's service account") {
		t.Errorf("install over a personal coral account: %v\n%s\nwant a refusal naming the account", err, out)
	}
	if st, err := os.Stat("/var/lib/coral"); err == nil {
		t.Errorf("/var/lib/coral made (%v) for a personal account", st.Mode())
	}
	run(t, "dpkg", "--purge", "coral")
	if got, err := exec.Command("id", "-u", "coral").Output(); err != nil || strings.TrimSpace(string(got)) != uid {
		t.Errorf("purge removed or changed the personal coral account: %q %v", got, err)
	}
	if _, err := os.Stat(home); err != nil {
		t.Errorf("the personal account's home: %v", err)
	}
}

// checkContents lists the coral package's files and control data.
func checkContents(t *testing.T, deb string) {
	files := run(t, "dpkg-deb", "-c", deb)
	for _, f := range wantFiles {
		if !strings.Contains(files, " "+f+"\n") {
			t.Errorf("package lacks %s", f)
		}
	}
	for _, f := range desktopFiles {
		if strings.Contains(files, " "+f+"\n") {
			t.Errorf("the coral package has coral-desktop's %s", f)
		}
	}
	if conf := run(t, "dpkg-deb", "-I", deb, "conffiles"); strings.TrimSpace(conf) != configPath {
		t.Errorf("conffiles = %q, want %s", conf, configPath)
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if _, err := exec.Command("dpkg-deb", "-I", deb, s).Output(); err != nil {
			t.Errorf("package lacks the %s script", s)
		}
	}
}

// verifyUnit checks the installed unit's hardening and, where systemd is
// present, lets systemd-analyze check the whole file.
func verifyUnit(t *testing.T) {
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wantUnit {
		if !bytes.Contains(b, []byte("\n"+w+"\n")) {
			t.Errorf("unit lacks %s", w)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not present: unit checked by content only")
		return
	}
	// Without a running systemd, verify still parses the unit and checks
	// its ExecStart binary; it may complain about the host's other units,
	// so only lines about coral.service count.
	out, _ := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "coral.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// execStart is the unit's ExecStart command line.
func execStart(t *testing.T) []string {
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if cmd, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return strings.Fields(cmd)
		}
	}
	t.Fatal("unit has no ExecStart")
	return nil
}

// runService runs the unit's command as the coral user, in a network
// namespace of its own (the packaged config's ports may be in use on this
// machine), until its proxy and control listener answer.
func runService(t *testing.T, cmdline []string, operatorKey string) {
	exec.Command("ip", "netns", "del", netnsName).Run()
	run(t, "ip", "netns", "add", netnsName)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", netnsName).Run() })
	run(t, "ip", "-n", netnsName, "link", "set", "lo", "up")

	args := append([]string{"netns", "exec", netnsName, "setpriv", "--reuid=coral", "--regid=coral", "--init-groups", "--"}, cmdline...)
	var logs bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		t.Logf("node output:\n%s", logs.String())
	}()

	var st struct {
		Version string                `json:"version"`
		Listen  struct{ HTTP string } `json:"listen"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := inNetns("curl", "-sf", "--max-time", "2", "http://127.0.0.1:8081/api/status")
		if err == nil && json.Unmarshal(out, &st) == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the node exited before answering: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("control listener did not answer within 60s: %v %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.Version == "" || !strings.HasSuffix(st.Listen.HTTP, ":8080") {
		t.Errorf("status: %+v", st)
	}
	// The proxy answers a visitor: the bare zone's front page.
	out, err := inNetns("curl", "-s", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: localhost:8080", "http://127.0.0.1:8080/")
	if err != nil || string(out) != fmt.Sprint(http.StatusOK) {
		t.Errorf("front page: %s %v", out, err)
	}
	// README, "Start a network" and "Run a network": the invite code, and a
	// signed document that pauses the proxy.
	if out, err := inNetns("coral", "invite", "-config", configPath); err != nil || !strings.HasPrefix(string(out), "coral1:") {
		t.Errorf("coral invite: %q %v", out, err)
	}
	doc := filepath.Join(t.TempDir(), "pause.json")
	os.WriteFile(doc, []byte(`{ "serial": 2, "paused": ["proxy"], "message": "Proxies paused for maintenance until 14:00 UTC." }`), 0o644)
	if out, err := inNetns("coral", "operator", "publish", "-key", operatorKey, "-config", configPath, doc); err != nil {
		t.Errorf("coral operator publish: %q %v", out, err)
	}
	out, err = inNetns("curl", "-s", "--max-time", "5", "-H", "Host: localhost:8080", "http://127.0.0.1:8080/")
	if err != nil || !strings.Contains(string(out), "paused for maintenance") {
		t.Errorf("proxy after the pause: %q %v", out, err)
	}
	// State went where the unit's StateDirectory is, owned by coral.
	for _, f := range []string{"control.token", "network.key"} {
		out := run(t, "stat", "-c", "%U", filepath.Join("/var/lib/coral", f))
		if strings.TrimSpace(out) != "coral" {
			t.Errorf("/var/lib/coral/%s owned by %q, want coral", f, out)
		}
	}
}

func inNetns(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netnsName}, args...)...).Output()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The desktop bundle (fyne package) holds the binary, the desktop entry and
// the icon, with an installer Makefile.
func TestDesktopBundle(t *testing.T) {
	bundle := os.Getenv("CORAL_BUNDLE")
	if bundle == "" {
		t.Skip("package: set CORAL_BUNDLE to a built desktop bundle (make test-package builds one)")
	}
	list := run(t, "tar", "tJf", bundle)
	for _, f := range []string{"coral/Makefile", "coral/usr/local/bin/coral",
		"coral/usr/local/share/applications/net.coralcdn.coral.desktop", "coral/usr/local/share/pixmaps/net.coralcdn.coral.png"} {
		if !strings.Contains(list, f+"\n") {
			t.Errorf("bundle lacks %s", f)
		}
	}
	entry := run(t, "tar", "xJOf", bundle, "coral/usr/local/share/applications/net.coralcdn.coral.desktop")
	// FyneApp.toml's [LinuxAndBSD]: menus file it under Network and a
	// search for "cdn" finds it.
	for _, want := range []string{"Exec=coral\n", "Name=Coral\n", "GenericName=Volunteer CDN node\n", "Categories=Network;", "Keywords=cdn;", "Comment="} {
		if !strings.Contains(entry, want) {
			t.Errorf("desktop entry lacks %q:\n%s", want, entry)
		}
	}
}
