package linkmon

import (
	"errors"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

func mustAdjuster(t *testing.T, o map[edgesync.LinkClass]Override) *Adjuster {
	t.Helper()
	a, err := NewAdjuster(o)
	if err != nil {
		t.Fatalf("NewAdjuster: %v", err)
	}
	return a
}

// TestAdjusterTable checks the table of docs/design.md#sync-parameters at
// the top of each range.
func TestAdjusterTable(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	a := mustAdjuster(t, nil)
	want := map[edgesync.LinkClass]SyncParameters{
		edgesync.Fiber:        {edgesync.SyncFull, false, 0, 16 * mib, time.Second, 10, false, false, DefaultSummaries},
		edgesync.Broadband:    {edgesync.SyncFullZstd, true, 1, 4 * mib, 5 * time.Second, 5, false, false, DefaultSummaries},
		edgesync.Mobile:       {edgesync.SyncDelta, true, 2, 256 * kib, 30 * time.Second, 2, true, false, DefaultSummaries},
		edgesync.Satellite:    {edgesync.SyncDeltaZstd, true, 3, 64 * kib, 60 * time.Second, 1, true, true, DefaultSummaries},
		edgesync.Intermittent: {edgesync.SyncStoreAndForward, true, 3, 32 * kib, 0, 1, true, false, DefaultSummaries},
		edgesync.Unknown:      {edgesync.SyncDeltaZstd, true, 2, 128 * kib, 30 * time.Second, 2, true, false, DefaultSummaries},
	}
	for class, w := range want {
		if got := a.Parameters(class, 10e9); got != w {
			t.Errorf("%v at 10 Gbit/s:\n got  %v\n want %v", class, got, w)
		}
	}
	// Fixed classes do not depend on bandwidth.
	for _, class := range []edgesync.LinkClass{edgesync.Intermittent, edgesync.Unknown} {
		if a.Parameters(class, 0) != want[class] {
			t.Errorf("%v at unknown bandwidth differs from its table row", class)
		}
	}
	// An invalid class gets Unknown's safe defaults.
	if a.Parameters(edgesync.LinkClass(99), 1e6) != want[edgesync.Unknown] {
		t.Errorf("invalid class did not get unknown's parameters")
	}
}

func TestAdjusterInterpolation(t *testing.T) {
	a := mustAdjuster(t, nil)
	lo, hi := a.Parameters(edgesync.Broadband, 15e6), a.Parameters(edgesync.Broadband, 90e6)
	if lo.ChunkSize >= hi.ChunkSize {
		t.Errorf("broadband chunk at 15 Mbit/s %d >= at 90 Mbit/s %d", lo.ChunkSize, hi.ChunkSize)
	}
	if got := a.Parameters(edgesync.Broadband, 10e6); got.ChunkSize != 1<<20 || got.Concurrency != 2 {
		t.Errorf("broadband at its bottom: %v, want 1 MiB and 2", got)
	}
	if got := a.Parameters(edgesync.Broadband, 55e6); got.ChunkSize != 2560<<10 || got.Concurrency != 4 {
		t.Errorf("broadband at mid-range: %v, want 2.5 MiB and concurrency 4 (3.5 rounded)", got)
	}
	for _, class := range edgesync.LinkClasses() {
		p := a.Profile(class)
		prev := a.Parameters(class, 0)
		for bps := 1e3; bps <= 1e10; bps *= 1.05 {
			cur := a.Parameters(class, bps)
			if cur.ChunkSize < prev.ChunkSize || cur.Concurrency < prev.Concurrency {
				t.Fatalf("%v not monotonic at %s: %v after %v", class, FormatBps(bps), cur, prev)
			}
			if cur.ChunkSize < p.MinChunkSize || cur.ChunkSize > p.Params.ChunkSize ||
				cur.Concurrency < p.MinConcurrency || cur.Concurrency > p.Params.Concurrency {
				t.Fatalf("%v at %s out of range: %v", class, FormatBps(bps), cur)
			}
			if cur.ChunkSize%1024 != 0 {
				t.Fatalf("%v at %s: chunk %d not whole KiB", class, FormatBps(bps), cur.ChunkSize)
			}
			prev = cur
		}
	}
}

func TestAdjusterOverrides(t *testing.T) {
	off, zero, level := false, time.Duration(0), 4
	a := mustAdjuster(t, map[edgesync.LinkClass]Override{
		edgesync.Mobile:    {ChunkSize: 32 << 10, Interval: &zero},
		edgesync.Broadband: {Compression: &off, Mode: edgesync.SyncFull},
		edgesync.Satellite: {Level: &level, MinBps: 64e3, MaxBps: 2e6},
	})
	m := a.Parameters(edgesync.Mobile, 20e6)
	if m.ChunkSize != 32<<10 || m.Interval != 0 || m.Mode != edgesync.SyncDelta || m.Concurrency != 2 {
		t.Errorf("mobile override: %v", m)
	}
	// The bottom followed the top down: flat at 32 KiB.
	if got := a.Parameters(edgesync.Mobile, 0).ChunkSize; got != 32<<10 {
		t.Errorf("mobile bottom chunk %d, want 32 KiB", got)
	}
	b := a.Parameters(edgesync.Broadband, 100e6)
	if b.Compression || b.Level != 0 || b.Mode != edgesync.SyncFull || b.ChunkSize != 4<<20 {
		t.Errorf("broadband override: %v", b)
	}
	s := a.Parameters(edgesync.Satellite, 1e6)
	if s.Level != 4 || s.ChunkSize >= 64<<10 || !s.SummaryOnly {
		t.Errorf("satellite override (level 4, range to 2 Mbit/s): %v", s)
	}
	if a.Parameters(edgesync.Fiber, 1e9) != mustAdjuster(t, nil).Parameters(edgesync.Fiber, 1e9) {
		t.Errorf("an override of other classes changed fiber")
	}
}

func TestAdjusterValidate(t *testing.T) {
	on, neg, bad := true, -time.Second, 7
	cases := map[string]map[edgesync.LinkClass]Override{
		"profile.fiber.level":               {edgesync.Fiber: {Level: &bad}},
		"profile.mobile.chunk_size":         {edgesync.Mobile: {ChunkSize: 100}},
		"profile.mobile.min_chunk_size":     {edgesync.Mobile: {MinChunkSize: 1 << 20}},
		"profile.satellite.interval":        {edgesync.Satellite: {Interval: &neg}},
		"profile.broadband.concurrency":     {edgesync.Broadband: {Concurrency: 1000}},
		"profile.broadband.min_concurrency": {edgesync.Broadband: {MinConcurrency: 9}},
		"profile.unknown.mode":              {edgesync.Unknown: {Mode: 42}},
		"profile.fiber.max_bps":             {edgesync.Fiber: {MaxBps: 1e6}},
		"profile":                           {edgesync.LinkClass(77): {}},
	}
	for field, o := range cases {
		_, err := NewAdjuster(o)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v, want ErrInvalidConfig naming it", field, err)
		}
	}
	// Turning compression on for fiber picks the default level.
	a := mustAdjuster(t, map[edgesync.LinkClass]Override{edgesync.Fiber: {Compression: &on}})
	if p := a.Parameters(edgesync.Fiber, 1e9); !p.Compression || p.Level != LevelDefault {
		t.Errorf("fiber with compression on: %v", p)
	}
}

func TestEffectivePin(t *testing.T) {
	a := mustAdjuster(t, nil)
	st := Status{Class: edgesync.Broadband, Median: Measurement{BandwidthBps: 100e6}}
	if c, p := a.Effective(st, Pin{}); c != edgesync.Broadband || p != a.Parameters(edgesync.Broadband, 100e6) {
		t.Errorf("auto: %v %v", c, p)
	}
	sat := edgesync.Satellite
	if c, p := a.Effective(st, Pin{Class: &sat}); c != sat || p != a.Parameters(sat, 100e6) {
		t.Errorf("pinned satellite: %v %v", c, p)
	}
	full := edgesync.SyncFull
	c, p := a.Effective(Status{Class: sat}, Pin{Mode: &full})
	if c != sat || p.Mode != full || p.Compression || p.Level != 0 || p.SummaryOnly || p.ChunkSize != 16<<10 {
		t.Errorf("satellite with mode full: %v %v", c, p)
	}
	dz := edgesync.SyncDeltaZstd
	_, p = a.Effective(Status{Class: edgesync.Fiber, Median: Measurement{BandwidthBps: 1e9}}, Pin{Mode: &dz})
	if !p.Compression || p.Level != LevelDefault || p.Mode != dz || p.ChunkSize != 16<<20 {
		t.Errorf("fiber with delta+zstd: %v", p)
	}
	sf := edgesync.SyncStoreAndForward
	if _, p := a.Effective(st, Pin{Mode: &sf}); !p.PriorityQueue || !p.Compression {
		t.Errorf("store-and-forward pin: %v", p)
	}
}

func TestParsePin(t *testing.T) {
	for in, want := range map[string]string{
		"auto": "auto", "AUTO": "auto", "satellite": "class=satellite",
		"delta-zstd": "mode=delta+zstd", "store-and-forward": "mode=store-and-forward",
	} {
		p, err := ParsePin(in)
		if err != nil || p.String() != want || p.Validate() != nil {
			t.Errorf("ParsePin(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	if _, err := ParsePin("warp"); !errors.Is(err, ErrInvalidPin) {
		t.Errorf("ParsePin(warp): %v, want ErrInvalidPin", err)
	}
	c, m := edgesync.LinkClass(50), edgesync.SyncMode(50)
	if !errors.Is((Pin{Class: &c}).Validate(), ErrInvalidPin) || !errors.Is((Pin{Mode: &m}).Validate(), ErrInvalidPin) {
		t.Errorf("invalid pin validated")
	}
}
