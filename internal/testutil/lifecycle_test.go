package testutil

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckCloseFindsEachBreach: CheckClose passes a type that keeps the
// convention and names the breach of one that does not.
func TestCheckCloseFindsEachBreach(t *testing.T) {
	errClosed := errors.New("closed")
	refuses := func() error { return errClosed }
	cases := []struct {
		name     string
		failOnce bool // Close fails when called again
		start    func() error
		wants    string
	}{
		{"keeps the convention", false, refuses, ""},
		{"second Close fails", true, refuses, "second Close"},
		{"starts after Close", false, func() error { return nil }, "start after Close"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			closes := 0
			closeFn := func() error {
				if closes++; tc.failOnce && closes > 1 {
					return errors.New("already closed")
				}
				return nil
			}
			r := &fatalRecorder{TB: t}
			CheckClose(r, closeFn, tc.start, errClosed)
			if (tc.wants == "") != (r.msg == "") || !strings.Contains(r.msg, tc.wants) {
				t.Fatalf("CheckClose failed with %q, want %q", r.msg, tc.wants)
			}
		})
	}
}
