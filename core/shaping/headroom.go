package shaping

// Headroom is what a node can still give, small enough to ride in every
// heartbeat: other nodes and the DNS server prefer proxies that have some.
type Headroom struct {
	// Paused: the node serves no visitors and peers now (paused, an "off"
	// window or the quota reached).
	Paused bool `json:"paused,omitempty" cbor:"1,keyasint,omitempty"`
	// SpareRate is the upload cap minus the measured upload rate, bytes/s;
	// -1: no cap.
	SpareRate int64 `json:"spare_rate" cbor:"2,keyasint"`
	// QuotaLeft is the bytes left of this month's quota; -1: no quota.
	QuotaLeft int64 `json:"quota_left" cbor:"3,keyasint"`
}

// MinSpare is the spare upload below which a node counts as full: less
// than a small page a second is no help to a visitor.
const MinSpare = 16 << 10

// Unbounded is the headroom of a node without a budget (no caps, no quota).
var Unbounded = Headroom{SpareRate: -1, QuotaLeft: -1}

// HasRoom says whether the node should be handed out and chosen.
func (h Headroom) HasRoom() bool {
	return !h.Paused && (h.SpareRate < 0 || h.SpareRate >= MinSpare) && h.QuotaLeft != 0
}

// Headroom reports the budget's headroom now.
func (b *Budget) Headroom() Headroom {
	st := b.State()
	b.mu.Lock()
	quota, used := int64(b.policy.MonthlyQuota), b.mtd.Load()
	b.mu.Unlock()
	h := Headroom{Paused: !st.Serving, SpareRate: -1, QuotaLeft: -1}
	if st.Caps.Upload.Capped() {
		sent, _ := b.Rates()
		h.SpareRate = max(int64(st.Caps.Upload)-sent, 0)
	}
	if quota > 0 {
		h.QuotaLeft = max(quota-used, 0)
	}
	return h
}
