package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// /v1/stats and /v1/summaries answered with Go field names as keys.
func TestJSONKeysAreSnakeCase(t *testing.T) {
	for _, v := range []any{VersionInfo{}, EventInfo{}, core.Summary{}, core.Stats{}} {
		testutil.CheckJSONNames(t, v)
	}
}

// An empty list is [] on the wire, not null.
func TestEmptyListsAreEmptyArrays(t *testing.T) {
	f := newFixture(t)
	f.serve(t)
	for _, path := range []string{"/v1/keys?agent=site-1&prefix=nothing/", "/v1/summaries?agent=site-1&prefix=nothing/", "/v1/events?agent=site-1&from=1000000"} {
		if status, b := f.get(t, path); status != http.StatusOK || strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("GET %s: %d %q, want []", path, status, b)
		}
	}
}
