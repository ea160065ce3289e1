package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const addressesAgent = `
name = "ship-7"
tls {
  ca   = "ca.pem"
  cert = "agent.pem"
  key  = "agent-key.pem"
}
endpoint "core" {
  addresses = ["core-a:7443", "core-b:7443"]
  fail_back = "10s"
}
endpoint "old" {
  address = "core-c:7443"
}
`

func TestParseAgentAddresses(t *testing.T) {
	c, err := ParseAgent(strings.NewReader(addressesAgent), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Endpoints[0]
	if e.Address != "core-a:7443" || !slices.Equal(e.AddressList(), []string{"core-a:7443", "core-b:7443"}) || e.FailBack != 10*time.Second {
		t.Errorf("endpoint core: address %q, addresses %q, fail_back %v", e.Address, e.AddressList(), e.FailBack)
	}
	if got := c.Endpoints[1].AddressList(); !slices.Equal(got, []string{"core-c:7443"}) {
		t.Errorf("endpoint old: addresses %q, want its one address", got)
	}
}

func TestParseAgentAddressesErrors(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{`address = "a:1"` + "\n" + `addresses = ["b:1"]`, `endpoint "core": set address or addresses, not both`},
		{`addresses = []`, `endpoint "core".addresses: must name at least one host:port`},
		{`addresses = ["a:1", "b"]`, `endpoint "core".addresses: entry 2: want host:port, got "b"`},
		{`addresses = ["a:1", "a:1"]`, `endpoint "core".addresses: "a:1" is listed twice`},
		{`addresses = ["a:1"]` + "\n" + `fail_back = "soon"`, `endpoint "core".fail_back`},
		{`server_name = "x"`, `endpoint "core": address is required`},
	} {
		src := strings.Replace(addressesAgent, `addresses = ["core-a:7443", "core-b:7443"]`+"\n  fail_back = \"10s\"", tc.block, 1)
		_, err := ParseAgent(strings.NewReader(src), "agent.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.block, err, tc.want)
		}
	}
}
