package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// Many URLs of one dead origin requested at once: the connects wait for
// the first attempt and share its failure instead of each timing out.
// Once a connect to an address works, connects to it run side by side.
func TestConnectGateSharesFailure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fail      error
		wantDials int32
	}{
		{"dead origin", syscall.ECONNREFUSED, 1},
		{"live origin", nil, 9}, // the first, then the eight that waited
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newConnectGate(time.Now)
			var dials atomic.Int32
			entered := make(chan struct{}, 16)
			release := make(chan struct{})
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				entered <- struct{}{}
				<-release
				if tc.fail != nil {
					return nil, tc.fail
				}
				c, _ := net.Pipe()
				return c, nil
			}
			const n = 9
			errs := make(chan error, n)
			var wg sync.WaitGroup
			connect := func() {
				c, err := g.dial(context.Background(), "tcp", "origin.example:80", dial)
				if c != nil {
					c.Close()
				}
				errs <- err
			}
			wg.Go(connect)
			<-entered
			for i := 1; i < n; i++ {
				wg.Go(connect)
			}
			// The others are waiting on the first attempt (none dialled).
			testkit.Eventually(t, 10*time.Second, "the others to wait", func() bool {
				return g.joined.Load() == n && dials.Load() == 1
			})
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if !errors.Is(err, tc.fail) {
					t.Errorf("dial error %v, want %v", err, tc.fail)
				}
			}
			if got := dials.Load(); got != tc.wantDials {
				t.Errorf("%d connects, want %d", got, tc.wantDials)
			}
		})
	}
}

// A connect abandoned by its own caller says nothing about the origin: the
// next caller tries for itself.
func TestConnectGateCallerCancelNotShared(t *testing.T) {
	g := newConnectGate(time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var dials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, _ := net.Pipe()
		return c, nil
	}
	if _, err := g.dial(ctx, "tcp", "a:80", dial); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dial: %v", err)
	}
	c, err := g.dial(context.Background(), "tcp", "a:80", dial)
	if err != nil {
		t.Fatalf("second dial: %v", err)
	}
	c.Close()
	if dials.Load() != 2 {
		t.Errorf("%d connects, want 2", dials.Load())
	}
}

// An origin that worked and then died goes back behind the gate at its
// first failed connect: the crowd after it shares one attempt again.
func TestConnectGateForgetsTrustOnFailure(t *testing.T) {
	g := newConnectGate(time.Now)
	var fail atomic.Bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if fail.Load() {
			return nil, syscall.ECONNREFUSED
		}
		c, _ := net.Pipe()
		return c, nil
	}
	c, err := g.dial(context.Background(), "tcp", "a:80", dial)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fail.Store(true)
	if _, err := g.dial(context.Background(), "tcp", "a:80", dial); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to the dead origin: %v", err)
	}
	if g.isTrusted("tcp a:80") {
		t.Error("an address whose connect just failed is still trusted")
	}
}
