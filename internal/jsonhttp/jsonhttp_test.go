package jsonhttp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNonNilIsAnArray(t *testing.T) {
	var none []string
	b, err := json.Marshal(NonNil(none))
	if err != nil || string(b) != "[]" {
		t.Fatalf("NonNil(nil) marshals as %s, %v; want []", b, err)
	}
	b, err = json.Marshal(NonNil([]int{1, 2}))
	if err != nil || string(b) != "[1,2]" {
		t.Fatalf("NonNil([1 2]) marshals as %s, %v", b, err)
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusTeapot, []byte(`{"a":1}`))
	if rec.Code != http.StatusTeapot {
		t.Errorf("status %d, want %d", rec.Code, http.StatusTeapot)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if got := rec.Body.String(); got != "{\"a\":1}\n" {
		t.Errorf("body %q", got)
	}
}
