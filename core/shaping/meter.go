package shaping

import (
	"sync"
	"time"
)

// meterSlots is the window of the current-rate meter, in seconds.
const meterSlots = 5

// meter measures a recent byte rate over the last few whole seconds.
type meter struct {
	mu    sync.Mutex
	slots [meterSlots + 1]int64
	sec   int64 // the unix second of the newest slot
}

func (m *meter) add(now time.Time, n int64) {
	m.mu.Lock()
	m.advance(now.Unix())
	m.slots[m.sec%int64(len(m.slots))] += n
	m.mu.Unlock()
}

// advance clears the slots of seconds that passed without traffic.
func (m *meter) advance(sec int64) {
	if sec <= m.sec {
		return
	}
	for s := max(m.sec+1, sec-int64(len(m.slots))+1); s <= sec; s++ {
		m.slots[s%int64(len(m.slots))] = 0
	}
	m.sec = sec
}

// rate is bytes per second over the last meterSlots complete seconds.
func (m *meter) rate(now time.Time) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now.Unix())
	var sum int64
	for i := range m.slots {
		if int64(i) != m.sec%int64(len(m.slots)) {
			sum += m.slots[i]
		}
	}
	return sum / meterSlots
}
