package jsstore

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/url"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestScanOverASlowLink stores and reads a staged object through a link
// to NATS slower than the client's one-second wait for a fetch that does
// not wait (FetchNoWait): a scan must not take a fetch cut short for the
// end of the data. It did: the commit found the data short and refused it
// as a hash mismatch, and reads ended early.
func TestScanOverASlowLink(t *testing.T) {
	srv := natstest.Run(t)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	// 1.5 MiB/s: one fetch of 8 chunks of 256 KiB takes over a second.
	slow := natstest.SlowProxy(t, u.Host, 3<<19)
	s := openTest(t, slow, core.Config{ChunkSize: 256 << 10, InlineMax: 64 << 10})
	const size = 4 << 20
	data := storetest.Payload(5, size)
	hdr := storetest.Header(storetest.OpID(1), edgesync.StateOp, "big", data)
	res, err := s.Apply("a", hdr, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("apply through a slow link: %v", err)
	}
	if res.Version != 1 {
		t.Fatalf("apply = %+v", res)
	}
	_, o, err := s.Current("a", "big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, io.NewSectionReader(o, 0, o.Size())); err != nil || n != size {
		t.Fatalf("read %d of %d bytes through a slow link: %v", n, size, err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("the object read through a slow link differs from the one stored")
	}
}
