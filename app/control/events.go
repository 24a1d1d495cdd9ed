package control

import "time"

// Event is a warning from the node's log, kept for the window's Log tab and
// the status page: "created a new network secret", "disk nearly full".
type Event struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Component string    `json:"component,omitempty"`
	Message   string    `json:"message"`
}
