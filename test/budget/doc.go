// Package budgettest runs real coral processes to check that a volunteer's
// budget is honoured across the network: a paused or tiny-capped node
// leaves the DNS answers and the peers' choices within a heartbeat or two,
// and comes back when it has room again.
package budgettest
