package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
)

const budgetHead = `
tls {
  ca = "ca.pem"
  cert = "a.pem"
  key = "a-key.pem"
}
endpoint "core" {
  address = "127.0.0.1:7443"
`

func TestBudgetBlock(t *testing.T) {
	cfg, err := ParseAgent(strings.NewReader(budgetHead+`
  budget {
    allowance = "10GiB"
    period = "month"
    reset_day = 15
    reset_at = "06:30"
    zone = "Europe/Oslo"
    reserve = "1GiB"
    stop_percent = { background = 40 }
    class "mobile" { allowance = "1GiB" }
  }
}`), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Endpoints[0].Budget
	if b == nil {
		t.Fatal("budget block not read")
	}
	if b.Allowance != 10<<30 || b.Period.Kind != budget.Month || b.ResetDay != 15 || b.ResetAt != 6*time.Hour+30*time.Minute ||
		b.Zone.String() != "Europe/Oslo" || b.Reserve != 1<<30 || b.Shares[edgesync.Background] != 0.4 ||
		b.Shares[edgesync.Normal] != 0.9 || b.Classes[edgesync.Mobile] != 1<<30 {
		t.Errorf("budget read as %+v", *b)
	}
}

func TestNoBudgetUnlessConfigured(t *testing.T) {
	cfg, err := ParseAgent(strings.NewReader(budgetHead+"}"), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoints[0].Budget != nil {
		t.Errorf("an endpoint without a budget block has a budget: %+v", cfg.Endpoints[0].Budget)
	}
}

func TestBudgetBlockErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ body, field string }{
		{`period = "month"`, `endpoint "core".budget.allowance`},
		{`allowance = "1GiB"`, `endpoint "core".budget.period`},
		{`allowance = "1GiB"` + "\n" + `period = "fortnight"`, `endpoint "core".budget.period`},
		{`allowance = "1GiB"` + "\n" + `period = "day"` + "\n" + `zone = "Mars/Olympus"`, `endpoint "core".budget.zone`},
		{`allowance = "1GiB"` + "\n" + `period = "day"` + "\n" + `reset_at = "25:00"`, `endpoint "core".budget.reset_at`},
		{`allowance = "1GiB"` + "\n" + `period = "day"` + "\n" + `stop_percent = { critical = 50 }`, `endpoint "core".budget.stop_percent.critical`},
		{`allowance = "1GiB"` + "\n" + `period = "day"` + "\n" + `stop_percent = { background = 150 }`, `endpoint "core".budget.stop_percent.background`},
		{`allowance = "1GiB"` + "\n" + `period = "day"` + "\n" + `reserve = "2GiB"`, `endpoint "core".budget.reserve`},
	} {
		_, err := ParseAgent(strings.NewReader(budgetHead+"budget {\n"+c.body+"\n}\n}"), "agent.hcl")
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: error %v, want one naming %s", c.body, err, c.field)
		}
	}
}
