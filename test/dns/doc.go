// Package dnstest runs Coral's nameserver in real `coral serve` processes
// (test/cluster) and queries it with a real DNS client: answers list only
// live proxies, a crashed or hung proxy leaves them, and RTT hints planted
// in the DSHT put the nearest proxies first.
package dnstest
