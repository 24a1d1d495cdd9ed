package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

type bench struct {
	duration             time.Duration
	names                int
	zone                 string
	serverCPU, clientCPU int
	dir                  string
}

// compare runs the four measurements and prints the summary line.
func compare(b bench) error {
	if err := needTools(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dnsqps-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	if err := b.writeFiles(); err != nil {
		return err
	}
	fmt.Printf("servers on CPU %d (coral GOMAXPROCS=1), dnsperf on CPU %d, %v per run, %d distinct names, zone %s\n",
		b.serverCPU, b.clientCPU, b.duration, b.names, b.zone)
	type run struct {
		name   string
		server func(port int) (stop func(), err error)
		file   string
	}
	coral := func(rrl bool) func(int) (func(), error) {
		return func(port int) (func(), error) { return b.startCoral(port, rrl) }
	}
	runs := []run{
		{"coral_distinct", coral(true), "distinct.txt"},
		{"nsd_distinct", b.startNSD, "distinct.txt"},
		{"coral_repeat", coral(false), "repeat.txt"},
		{"nsd_repeat", b.startNSD, "repeat.txt"},
	}
	qps := map[string]float64{}
	for _, r := range runs {
		port, err := freePort()
		if err != nil {
			return err
		}
		stop, err := r.server(port)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		res, err := b.dnsperf(port, r.file)
		stop()
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("%s: %.0f queries/s, %d of %d lost\n", r.name, res.qps, res.lost, res.sent)
		qps[r.name] = res.qps
	}
	ratio := min(qps["coral_distinct"]/qps["nsd_distinct"], qps["coral_repeat"]/qps["nsd_repeat"])
	fmt.Printf("coral_distinct_qps=%.0f nsd_distinct_qps=%.0f coral_repeat_qps=%.0f nsd_repeat_qps=%.0f ratio=%.2f\n",
		qps["coral_distinct"], qps["nsd_distinct"], qps["coral_repeat"], qps["nsd_repeat"], ratio)
	return nil
}

// writeFiles writes the dnsperf query files and NSD's zone: every name the
// queries ask for, with three A records as Coral answers.
func (b bench) writeFiles() error {
	repeat := "www.example.com." + b.zone
	var q, z strings.Builder
	fmt.Fprintf(&z, "$ORIGIN %s.\n$TTL 30\n@ IN SOA ns1 hostmaster 1 3600 600 604800 30\n@ IN NS ns1\nns1 IN A 192.0.2.53\n", b.zone)
	addName := func(name string, i int) {
		for k := range 3 {
			fmt.Fprintf(&z, "%s. IN A 192.0.%d.%d\n", name, 2+(i+k)/250%50, 1+(i+k)%250)
		}
	}
	addName(repeat, 0)
	for i := range b.names {
		name := fmt.Sprintf("h%d.example.com.%s", i, b.zone)
		fmt.Fprintf(&q, "%s A\n", name)
		addName(name, i)
	}
	files := map[string]string{
		"distinct.txt": q.String(),
		"repeat.txt":   repeat + " A\n",
		"zone":         z.String(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startCoral runs this program with -serve on port, pinned, GOMAXPROCS=1.
func (b bench) startCoral(port int, rrl bool) (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", "-c", strconv.Itoa(b.serverCPU), self,
		"-serve", fmt.Sprintf("127.0.0.1:%d", port), "-zone", b.zone, fmt.Sprintf("-rrl=%v", rrl))
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		stop()
		return nil, fmt.Errorf("coral server did not start: %q %v", line, err)
	}
	return stop, nil
}

// startNSD runs NSD in the foreground on port, pinned, one server process,
// minimal responses and its rate limiting off.
func (b bench) startNSD(port int) (func(), error) {
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1@%[1]d
	port: %[1]d
	server-count: 1
	username: ""
	chroot: ""
	database: ""
	zonesdir: "%[2]s"
	zonelistfile: "%[2]s/zone.list"
	xfrdfile: "%[2]s/xfrd.state"
	pidfile: "%[2]s/nsd.pid"
	logfile: "%[2]s/nsd.log"
	minimal-responses: yes
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
	verbosity: 0
remote-control:
	control-enable: no
zone:
	name: "%[3]s"
	zonefile: "%[2]s/zone"
`, port, b.dir, b.zone)
	path := filepath.Join(b.dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", "-c", strconv.Itoa(b.serverCPU), "nsd", "-d", "-c", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitAnswering(ctx, port, "www.example.com."+b.zone, exited); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(b.dir, "nsd.log"))
		return nil, fmt.Errorf("nsd: %w; log: %s", err, log)
	}
	return stop, nil
}

// waitAnswering polls the server until it answers name.
func waitAnswering(ctx context.Context, port int, name string, exited <-chan error) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	for {
		if r, _, err := c.ExchangeContext(ctx, m, fmt.Sprintf("127.0.0.1:%d", port)); err == nil && len(r.Answer) > 0 {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return errors.New("not answering")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type perfResult struct {
	qps        float64
	sent, lost int
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reSent = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+(\d+)`)
)

// dnsperf drives the server on port with the queries in file, pinned to
// the client CPU, and parses its report.
func (b bench) dnsperf(port int, file string) (perfResult, error) {
	cmd := exec.Command("taskset", "-c", strconv.Itoa(b.clientCPU), "dnsperf",
		"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", filepath.Join(b.dir, file),
		"-l", strconv.Itoa(max(1, int(b.duration.Seconds()))), "-c", "8", "-q", "400", "-T", "1", "-t", "2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return perfResult{}, fmt.Errorf("dnsperf: %w: %s", err, out)
	}
	var r perfResult
	m := reQPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("dnsperf: no queries per second in: %s", out)
	}
	r.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := reSent.FindSubmatch(out); m != nil {
		r.sent, _ = strconv.Atoi(string(m[1]))
	}
	if m := reLost.FindSubmatch(out); m != nil {
		r.lost, _ = strconv.Atoi(string(m[1]))
	}
	return r, nil
}

// freePort finds a port free for UDP and TCP on loopback.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}
