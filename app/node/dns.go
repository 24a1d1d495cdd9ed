package node

import (
	"fmt"
	"net/netip"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/locality"
)

// newLocator builds the nameserver's locator (core/locality) from the
// configuration and wires it to the host: it answers peers' /coral/info
// requests (every node does, whether or not it runs DNS itself) and hears
// of connections opening and closing.
func newLocator(n *Node) (*locality.Locator, error) {
	advertise, err := parseAdvertise(n.advertiseSetting())
	if err != nil {
		return nil, err
	}
	l, err := locality.NewLocator(locality.LocatorConfig{
		Self:       n.nodeID,
		DNSListen:  n.cfg.DNS.Listen,
		Nameserver: n.cfg.DNS.Nameserver,
		HTTPListen: n.cfg.HTTP.Listen,
		Advertise:  advertise,
		Headroom:   n.budget.Headroom,
		Logger:     n.parts,
	}, n.host, n.dht)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.host.ServeInfo(l.Announcement)
	n.host.OnInfoChanged(l.Connected) // a peer's change notice: ask it now
	n.host.WatchPeers(l.Connected, l.Forget)
	return l, nil
}

// parseAdvertise reads [http] advertise: IP addresses, none unspecified.
func parseAdvertise(setting []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range setting {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("node: http.advertise: %q is not an IP address", s)
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// advertiseSetting is [http] advertise: the addresses visitors use for
// this node's proxy when the node cannot see them itself (a port-forwarded
// home router's public address, or test addresses).
func (n *Node) advertiseSetting() []string { return n.cfg.HTTP.Advertise }

// rateLimit maps the [dns] rrl_* keys to the limiter; 0 means off in the
// config and "never" for slip, where dnsserver takes 0 as "default".
func rateLimit(d config.DNS) dnsserver.RateLimit {
	rl := dnsserver.RateLimit{
		PerSecond:  float64(d.RRLResponsesPerSecond),
		Burst:      d.RRLBurst,
		Slip:       d.RRLSlip,
		MaxEntries: d.RRLTableSize,
	}
	if rl.PerSecond == 0 {
		rl.PerSecond = -1
	}
	if rl.Slip == 0 {
		rl.Slip = -1
	}
	return rl
}
