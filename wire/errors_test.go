package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	edgesync "github.com/edge-sync/edge-sync"
)

func TestEveryCodeRoundTrips(t *testing.T) {
	names := map[string]bool{}
	for c := Code(1); c < numCodes; c++ {
		if names[c.String()] {
			t.Fatalf("duplicate code name %q", c)
		}
		names[c.String()] = true
		sentinel := codeSentinels[c]
		if sentinel == nil {
			t.Fatalf("code %s has no sentinel", c)
		}
		// Local error -> code: wrapped sentinels keep their code.
		local := fmt.Errorf("store op: %w", sentinel)
		if got := CodeOf(local); got != c {
			t.Fatalf("CodeOf(%v) = %s, want %s", local, got, c)
		}
		// Code -> frame -> wire -> error on the other side.
		b, err := NackFor(edgesync.OpID{1}, local).Append(nil)
		if err != nil {
			t.Fatalf("append nack: %v", err)
		}
		f, _, err := Parse(b)
		if err != nil {
			t.Fatalf("parse nack: %v", err)
		}
		remote := f.(*Nack).Err()
		if !errors.Is(remote, sentinel) {
			t.Fatalf("received %v does not match %v", remote, sentinel)
		}
		if got := CodeOf(fmt.Errorf("send op: %w", remote)); got != c {
			t.Fatalf("CodeOf(received) = %s, want %s", got, c)
		}
		for o := Code(1); o < numCodes; o++ {
			if o != c && errors.Is(remote, codeSentinels[o]) {
				t.Fatalf("%v also matches the sentinel of %s", remote, o)
			}
		}
		if !strings.Contains(remote.Error(), c.String()) {
			t.Fatalf("error text %q does not name the code", remote)
		}
	}
}

type codecError struct{}

func (codecError) Error() string    { return "decode: window too large" }
func (codecError) WireCode() uint16 { return uint16(CodeCorrupt) }

func TestCodeOfOtherErrors(t *testing.T) {
	cases := []struct {
		err  error
		want Code
	}{
		{nil, CodeOK},
		{errors.New("disk on fire"), CodeInternal},
		{fmt.Errorf("apply: %w", codecError{}), CodeCorrupt},
		{io.ErrUnexpectedEOF, CodeBadRequest},
		{fmt.Errorf("read: %w", ErrUnknownFrame), CodeBadRequest},
		{fmt.Errorf("read: %w", ErrUnexpectedFrame), CodeBadRequest},
		{fmt.Errorf("read: %w", ErrFieldTooLong), CodeTooLarge},
		{context.Canceled, CodeShuttingDown},
		{&ProtocolError{Code: 999, Msg: "from the future"}, 999},
	}
	for _, c := range cases {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %s, want %s", c.err, got, c.want)
		}
	}
	if ErrorFromCode(CodeOK, "fine") != nil {
		t.Fatal("ErrorFromCode(ok) is not nil")
	}
	if err := ErrorFromCode(999, "x"); errors.Is(err, ErrInternal) || Code(999).String() != "code(999)" {
		t.Fatalf("unknown code: %v matches a sentinel or is misnamed", err)
	}
	if !CodeBusy.Retryable() || CodeBaseMismatch.Retryable() {
		t.Fatal("Retryable: busy must be, base-mismatch must not be")
	}
}

func TestErrorFrameMessageIsCutAtRuneBoundary(t *testing.T) {
	long := errors.New(strings.Repeat("é", MaxMessageLen)) // 2 bytes per rune
	f := ErrorFrameFor(long)
	if len(f.Msg) > MaxMessageLen || !utf8.ValidString(f.Msg) {
		t.Fatalf("message of %d bytes, valid UTF-8 %v", len(f.Msg), utf8.ValidString(f.Msg))
	}
	if _, err := f.Append(nil); err != nil {
		t.Fatalf("append: %v", err)
	}
	if f.Code != CodeInternal {
		t.Fatalf("code = %s, want internal", f.Code)
	}
	if !errors.Is(f.Err(), ErrInternal) {
		t.Fatalf("Err() = %v", f.Err())
	}
}
