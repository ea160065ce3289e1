package linkmon

import (
	"fmt"
	"math"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/units"
)

// Compression levels for SyncParameters.Level. 1..4 are the same numbers
// as klauspost/compress/zstd's EncoderLevel (SpeedFastest,
// SpeedDefault, SpeedBetterCompression, SpeedBestCompression), so the codec
// can convert with zstd.EncoderLevel(level).
const (
	LevelNone    = 0 // no compression
	LevelFastest = 1
	LevelDefault = 2
	LevelBetter  = 3
	LevelBest    = 4
)

// Chunk and concurrency limits that Validate enforces on every profile.
const (
	MinChunkBytes  = 1 << 10  // 1 KiB
	MaxChunkBytes  = 64 << 20 // 64 MiB
	MaxConcurrency = 64
	chunkRounding  = 1 << 10 // interpolated chunk sizes are whole KiB
)

// SyncParameters is how the sender sends under the current link: the
// adjuster's output and the sender's input.
type SyncParameters struct {
	// Mode is the sync mode (full, full+zstd, delta, delta+zstd,
	// store-and-forward).
	Mode edgesync.SyncMode `json:"mode"`
	// Compression says whether payloads (or deltas) are compressed.
	Compression bool `json:"compression"`
	// Level is the codec level: 0 none, 1 fastest, 2 default, 3 better,
	// 4 best; 0 exactly when Compression is off.
	Level int `json:"level"`
	// ChunkSize is the largest piece a payload is cut into, in bytes.
	ChunkSize int `json:"chunk_size"`
	// Interval is the batching period for ordinary data; 0 means best
	// effort (send whenever the link is up). Critical and schema ops go at
	// once in every mode.
	Interval time.Duration `json:"interval_ns"`
	// Concurrency is the number of streams the sender keeps busy.
	Concurrency int `json:"concurrency"`
	// PriorityQueue makes the sender drain strictly by priority instead of
	// interleaving priorities across streams.
	PriorityQueue bool `json:"priority_queue"`
	// SummaryOnly sends the ops of the priorities in Summaries as their
	// metadata and summary first; their full data follows as backfill
	// when the link has room (satellite; docs/backfill.md).
	SummaryOnly bool `json:"summary_only"`
	// Summaries are the priorities SummaryOnly applies to.
	Summaries SummarySet `json:"summary_priorities"`
}

// String renders the parameters for logs.
func (p SyncParameters) String() string {
	iv := "best-effort"
	if p.Interval > 0 {
		iv = units.FormatDuration(p.Interval)
	}
	sum := "false"
	if p.SummaryOnly {
		sum = p.Summaries.String()
	}
	return fmt.Sprintf("mode=%s level=%d chunk=%s interval=%s concurrency=%d pq=%t summary=%s",
		p.Mode, p.Level, strings.ReplaceAll(units.FormatBytes(int64(p.ChunkSize)), " ", ""), iv, p.Concurrency, p.PriorityQueue, sum)
}

// ClassProfile is one row of the parameter table plus its interpolation
// range. Params holds the values at the top of the range
// (docs/design.md#sync-parameters); chunk size and concurrency fall
// linearly to MinChunkSize and MinConcurrency as the measured bandwidth
// falls from MaxBps to MinBps, and stay flat outside the range.
type ClassProfile struct {
	Params         SyncParameters `json:"params"`
	MinChunkSize   int            `json:"min_chunk_size"`
	MinConcurrency int            `json:"min_concurrency"`
	MinBps         float64        `json:"min_bps"`
	MaxBps         float64        `json:"max_bps"`
}

// DefaultProfiles returns the table of docs/design.md#sync-parameters.
// The ranges follow the class thresholds: a class's bottom of range is its
// minimum bandwidth (chunks about a quarter of the top, so that one chunk
// takes roughly as long to send at the bottom as at the top), its top is
// the next class's minimum.
//
//	class        range             chunk            concurrency
//	fiber        100 Mbit/s–1 Gbit/s  4 MiB–16 MiB   5–10
//	broadband    10–100 Mbit/s        1 MiB–4 MiB    2–5
//	mobile       1–10 Mbit/s          64 KiB–256 KiB 1–2
//	satellite    128 kbit/s–1 Mbit/s  16 KiB–64 KiB  1
//	intermittent fixed                32 KiB         1
//	unknown      fixed                128 KiB        2
//
// Satellite links faster than 1 Mbit/s (a GEO link at 20 Mbit/s) get the
// top of the range: their RTT, not their rate, limits them.
func DefaultProfiles() map[edgesync.LinkClass]ClassProfile {
	const kib, mib = 1 << 10, 1 << 20
	profiles := map[edgesync.LinkClass]ClassProfile{
		edgesync.Fiber: {
			Params:       SyncParameters{Mode: edgesync.SyncFull, Level: LevelNone, ChunkSize: 16 * mib, Interval: time.Second, Concurrency: 10},
			MinChunkSize: 4 * mib, MinConcurrency: 5, MinBps: 100e6, MaxBps: 1e9,
		},
		edgesync.Broadband: {
			Params:       SyncParameters{Mode: edgesync.SyncFullZstd, Compression: true, Level: LevelFastest, ChunkSize: 4 * mib, Interval: 5 * time.Second, Concurrency: 5},
			MinChunkSize: 1 * mib, MinConcurrency: 2, MinBps: 10e6, MaxBps: 100e6,
		},
		edgesync.Mobile: {
			Params:       SyncParameters{Mode: edgesync.SyncDelta, Compression: true, Level: LevelDefault, ChunkSize: 256 * kib, Interval: 30 * time.Second, Concurrency: 2, PriorityQueue: true},
			MinChunkSize: 64 * kib, MinConcurrency: 1, MinBps: 1e6, MaxBps: 10e6,
		},
		edgesync.Satellite: {
			Params:       SyncParameters{Mode: edgesync.SyncDeltaZstd, Compression: true, Level: LevelBetter, ChunkSize: 64 * kib, Interval: 60 * time.Second, Concurrency: 1, PriorityQueue: true, SummaryOnly: true},
			MinChunkSize: 16 * kib, MinConcurrency: 1, MinBps: 128e3, MaxBps: 1e6,
		},
		edgesync.Intermittent: {
			Params:       SyncParameters{Mode: edgesync.SyncStoreAndForward, Compression: true, Level: LevelBetter, ChunkSize: 32 * kib, Interval: 0, Concurrency: 1, PriorityQueue: true},
			MinChunkSize: 32 * kib, MinConcurrency: 1,
		},
		edgesync.Unknown: {
			Params:       SyncParameters{Mode: edgesync.SyncDeltaZstd, Compression: true, Level: LevelDefault, ChunkSize: 128 * kib, Interval: 30 * time.Second, Concurrency: 2, PriorityQueue: true},
			MinChunkSize: 128 * kib, MinConcurrency: 2,
		},
	}
	for class, p := range profiles {
		p.Params.Summaries = DefaultSummaries
		profiles[class] = p
	}
	return profiles
}

// Override is a partial profile from config: zero (or nil) fields keep the
// default. Pointers are used where zero is a meaningful value.
type Override struct {
	Mode          edgesync.SyncMode `json:"mode,omitempty"`
	Compression   *bool             `json:"compression,omitempty"`
	Level         *int              `json:"level,omitempty"`
	ChunkSize     int               `json:"chunk_size,omitempty"`
	Interval      *time.Duration    `json:"interval_ns,omitempty"`
	Concurrency   int               `json:"concurrency,omitempty"`
	PriorityQueue *bool             `json:"priority_queue,omitempty"`
	SummaryOnly   *bool             `json:"summary_only,omitempty"`
	// Summaries, when set, replaces the priorities that send summaries
	// first (an empty list: none do).
	Summaries *SummarySet `json:"summary_priorities,omitempty"`
	// MinChunkSize and MinConcurrency set the bottom of the range. When
	// only the top is overridden below the default bottom, the bottom
	// follows it down (the class becomes flat).
	MinChunkSize   int     `json:"min_chunk_size,omitempty"`
	MinConcurrency int     `json:"min_concurrency,omitempty"`
	MinBps         float64 `json:"min_bps,omitempty"`
	MaxBps         float64 `json:"max_bps,omitempty"`
}

// Apply returns p with the override's set fields.
func (o Override) Apply(p ClassProfile) ClassProfile {
	if o.Mode != 0 {
		p.Params.Mode = o.Mode
	}
	if o.Compression != nil {
		p.Params.Compression = *o.Compression
		if !*o.Compression && o.Level == nil {
			p.Params.Level = LevelNone
		}
		if *o.Compression && o.Level == nil && p.Params.Level == LevelNone {
			p.Params.Level = LevelDefault
		}
	}
	if o.Level != nil {
		p.Params.Level = *o.Level
	}
	overrideWithFloor(&p.Params.ChunkSize, &p.MinChunkSize, o.ChunkSize, o.MinChunkSize)
	if o.Interval != nil {
		p.Params.Interval = *o.Interval
	}
	overrideWithFloor(&p.Params.Concurrency, &p.MinConcurrency, o.Concurrency, o.MinConcurrency)
	if o.PriorityQueue != nil {
		p.Params.PriorityQueue = *o.PriorityQueue
	}
	if o.SummaryOnly != nil {
		p.Params.SummaryOnly = *o.SummaryOnly
	}
	if o.Summaries != nil {
		p.Params.Summaries = *o.Summaries
	}
	if o.MinBps != 0 {
		p.MinBps = o.MinBps
	}
	if o.MaxBps != 0 {
		p.MaxBps = o.MaxBps
	}
	return p
}

// overrideWithFloor applies an override of a value that interpolates down
// to a floor (chunk size, concurrency): a set value replaces it and lowers
// the floor to it unless the floor is set too; a set floor replaces the
// floor.
func overrideWithFloor(v, floor *int, ov, ofloor int) {
	if ov != 0 {
		*v = ov
		if ofloor == 0 {
			*floor = min(*floor, ov)
		}
	}
	if ofloor != 0 {
		*floor = ofloor
	}
}

// Validate reports the first bad field; prefix names the profile in the
// error (e.g. "profile.mobile").
func (p ClassProfile) Validate(prefix string) error {
	q := p.Params
	bad := func(field, format string, args ...any) error {
		return cfgErr(prefix+"."+field, format, args...)
	}
	switch {
	case !q.Mode.Valid():
		return bad("mode", "%v is not a sync mode", q.Mode)
	case q.Level < LevelNone || q.Level > LevelBest:
		return bad("level", "%d must be 0 (none) to 4 (best)", q.Level)
	case q.Compression && q.Level == LevelNone:
		return bad("level", "compression is on but level is 0")
	case !q.Compression && q.Level != LevelNone:
		return bad("level", "%d with compression off (want 0)", q.Level)
	case q.ChunkSize < MinChunkBytes || q.ChunkSize > MaxChunkBytes:
		return bad("chunk_size", "%s must be %s to %s", units.FormatBytes(int64(q.ChunkSize)), units.FormatBytes(MinChunkBytes), units.FormatBytes(MaxChunkBytes))
	case p.MinChunkSize < MinChunkBytes || p.MinChunkSize > q.ChunkSize:
		return bad("min_chunk_size", "%s must be %s to chunk_size (%s)", units.FormatBytes(int64(p.MinChunkSize)), units.FormatBytes(MinChunkBytes), units.FormatBytes(int64(q.ChunkSize)))
	case q.Summaries&^(DefaultSummaries|1<<edgesync.High) != 0:
		return bad("summary_priorities", "%08b holds critical or schema, which always go in full at once", uint8(q.Summaries))
	case q.Interval < 0:
		return bad("interval", "%v must not be negative (0 is best effort)", q.Interval)
	case q.Concurrency < 1 || q.Concurrency > MaxConcurrency:
		return bad("concurrency", "%d must be 1..%d", q.Concurrency, MaxConcurrency)
	case p.MinConcurrency < 1 || p.MinConcurrency > q.Concurrency:
		return bad("min_concurrency", "%d must be 1..concurrency (%d)", p.MinConcurrency, q.Concurrency)
	case !(p.MinBps >= 0) || math.IsInf(p.MinBps, 0):
		return bad("min_bps", "%v must be a non-negative number", p.MinBps)
	case !(p.MaxBps >= p.MinBps) || math.IsInf(p.MaxBps, 0):
		return bad("max_bps", "%v must be at least min_bps (%v)", p.MaxBps, p.MinBps)
	}
	return nil
}

// at interpolates the profile at bps. An unknown bandwidth (0) gets the
// bottom of the range, the cautious end.
func (p ClassProfile) at(bps float64) SyncParameters {
	q := p.Params
	frac := 1.0
	if p.MaxBps > p.MinBps {
		frac = (bps - p.MinBps) / (p.MaxBps - p.MinBps)
	} else if bps < p.MaxBps {
		frac = 0
	}
	if !(frac > 0) { // also NaN
		frac = 0
	}
	frac = min(frac, 1)
	chunk := float64(p.MinChunkSize) + frac*float64(q.ChunkSize-p.MinChunkSize)
	q.ChunkSize = max(p.MinChunkSize, min(q.ChunkSize, int(chunk)/chunkRounding*chunkRounding))
	q.Concurrency = p.MinConcurrency + int(math.Round(frac*float64(q.Concurrency-p.MinConcurrency)))
	return q
}

// Adjuster maps a link class and bandwidth to SyncParameters. It is
// immutable once built and safe for concurrent use.
type Adjuster struct {
	profiles map[edgesync.LinkClass]ClassProfile
}

// NewAdjuster builds an adjuster from DefaultProfiles with the given
// per-class overrides applied, and validates every profile.
func NewAdjuster(overrides map[edgesync.LinkClass]Override) (*Adjuster, error) {
	profiles := DefaultProfiles()
	for class, o := range overrides {
		if !class.Valid() {
			return nil, fmt.Errorf("new adjuster: %w: profile: unknown class %d", ErrInvalidConfig, uint8(class))
		}
		profiles[class] = o.Apply(profiles[class])
	}
	for _, class := range edgesync.LinkClasses() {
		if err := profiles[class].Validate("profile." + class.String()); err != nil {
			return nil, fmt.Errorf("new adjuster: %w", err)
		}
	}
	return &Adjuster{profiles: profiles}, nil
}

// Profile returns the class's profile (Unknown's for an invalid class).
func (a *Adjuster) Profile(class edgesync.LinkClass) ClassProfile {
	if p, ok := a.profiles[class]; ok {
		return p
	}
	return a.profiles[edgesync.Unknown]
}

// Parameters returns the class's parameters at the measured bandwidth
// (bit/s; 0 if unknown), interpolating chunk size and concurrency.
func (a *Adjuster) Parameters(class edgesync.LinkClass, bandwidthBps float64) SyncParameters {
	return a.Profile(class).at(bandwidthBps)
}
