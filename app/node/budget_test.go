package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/testkit"
)

func controlAs(t *testing.T, n *Node, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.Addrs().Control+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func budgetOf(t *testing.T, n *Node) control.BudgetStatus {
	t.Helper()
	_, b := controlAs(t, n, "GET", "/api/status", "", "")
	var st control.Status
	if err := json.Unmarshal([]byte(b), &st); err != nil || st.Budget == nil {
		t.Fatalf("status without budget: %v\n%s", err, b)
	}
	return *st.Budget
}

// Settings change live through the control API with the token, refuse bad
// values naming the key, and survive a restart.
func TestSettingsAPILiveAndPersisted(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	if code, b := controlAs(t, n, "GET", "/api/settings", "", ""); code != 200 || !strings.Contains(b, `"paused": false`) || !strings.Contains(b, `"upload": "0"`) {
		t.Fatalf("GET /api/settings: %d\n%s", code, b)
	}
	if code, _ := controlAs(t, n, "PUT", "/api/settings", "", `{"paused": true}`); code != http.StatusUnauthorized {
		t.Fatalf("PUT without the token: %d", code)
	}
	if code, _ := controlAs(t, n, "PUT", "/api/settings", "wrong-token-wrong-token", `{"paused": true}`); code != http.StatusUnauthorized {
		t.Fatalf("PUT with a wrong token: %d", code)
	}
	code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"bandwidth": {"upload": "fast"}}`)
	var fe control.FieldError
	if json.Unmarshal([]byte(b), &fe); code != 400 || fe.Field != "bandwidth.upload" {
		t.Fatalf("bad rate: %d %s", code, b)
	}
	if !budgetOf(t, n).Serving {
		t.Fatal("a refused change paused the node")
	}
	code, b = controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": true, "bandwidth": {"upload": "1MiB/s", "monthly_quota": "10GiB"}}`)
	if code != 200 || !strings.Contains(b, `"upload": "1MiB/s"`) {
		t.Fatalf("PUT: %d %s", code, b)
	}
	// The PUT returns once subscribers have applied it.
	bs := budgetOf(t, n)
	if bs.Serving || bs.Reason != "paused" || bs.Upload != "1MiB/s" || bs.QuotaBytes != 10<<30 || !strings.Contains(bs.Note, "paused") {
		t.Fatalf("after PUT: %+v", bs)
	}
	if _, page := controlAs(t, n, "GET", "/", "", ""); !strings.Contains(page, `id="budget-warning"`) {
		t.Error("the status page does not say the node is paused")
	}
	if _, m := controlAs(t, n, "GET", "/metrics", "", ""); !strings.Contains(m, "coral_budget_serving 0") || !strings.Contains(m, "coral_budget_upload_cap_bytes_per_second 1.048576e+06") {
		t.Errorf("metrics:\n%s", grepLines(m, "coral_budget"))
	}
	n.Close()

	n2 := startNode(t, cfg)
	if bs := budgetOf(t, n2); bs.Serving || bs.Upload != "1MiB/s" {
		t.Fatalf("after restart: %+v", bs)
	}
	controlAs(t, n2, "PUT", "/api/settings", n2.Token(), `{"paused": false}`)
	testkit.Eventually(t, time.Second, "resume within a second", func() bool { return budgetOf(t, n2).Serving })
}

func grepLines(s, sub string) string {
	var out bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}

// Usage is recorded per site and shown in /api/usage.
func TestUsageAPI(t *testing.T) {
	n := startNode(t, testConfig(t))
	n.budget.CountSent("a.example", 1234)
	n.budget.CountReceived("a.example", 99)
	code, b := controlAs(t, n, "GET", "/api/usage?site=a.example", "", "")
	if code != 200 || !strings.Contains(b, `"sent": 1234`) || !strings.Contains(b, `"received": 99`) {
		t.Fatalf("GET /api/usage: %d\n%s", code, b)
	}
	if code, _ := controlAs(t, n, "GET", "/api/usage?since=yesterday", "", ""); code != 400 {
		t.Fatalf("bad since: %d", code)
	}
	if bs := budgetOf(t, n); bs.Sites["a.example"].Sent != 1234 || bs.MonthSent < 1234 {
		t.Fatalf("status: %+v", bs)
	}
}

func TestBudgetNote(t *testing.T) {
	reset := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		b    control.BudgetStatus
		want string
	}{
		{"all well", control.BudgetStatus{Serving: true}, ""},
		{"quota at 89 %", control.BudgetStatus{Serving: true, QuotaBytes: 100, QuotaUsed: 89}, ""},
		{"quota at 90 %", control.BudgetStatus{Serving: true, QuotaBytes: 100, QuotaUsed: 90, QuotaWarn: true, QuotaResetAt: reset}, "90 % of the monthly quota used (resets 1 Jan 00:00)."},
		{"quota reached", control.BudgetStatus{Reason: "quota reached", QuotaBytes: 100, QuotaUsed: 100, QuotaWarn: true, QuotaResetAt: reset}, "the monthly quota is used up"},
		{"paused", control.BudgetStatus{Reason: "paused"}, "paused"},
		{"off window", control.BudgetStatus{Reason: "off window"}, "\"off\" window"},
		{"upload or download off", control.BudgetStatus{Reason: "off window", Window: -1}, "set to \"off\""},
	} {
		got := budgetNote(&tc.b)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: note %q, want %q", tc.name, got, tc.want)
		}
	}
}
