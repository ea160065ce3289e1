package codec

import (
	"strings"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/enum"
	"github.com/klauspost/compress/zstd"
)

// Mode is how a payload, or one chunk of it, is encoded.
//
// The four data modes are two independent choices: whether the chunk is
// rebuilt from copies out of the base (the version the core already holds)
// plus new bytes ("delta"), and whether the bytes are entropy-coded ("zstd").
// ModeDelta zstd-compresses its ops and new bytes without entropy coding,
// which is cheaper to encode and decode and loses little when the new bytes
// are few or already compressed; ModeDeltaZstd also Huffman-codes them.
type Mode uint8

// The modes. The zero value is invalid.
const (
	// ModeFull carries the bytes as they are.
	ModeFull Mode = iota + 1
	// ModeZstd carries a zstd frame of the bytes.
	ModeZstd
	// ModeDelta carries copies from the base and new bytes (chunk.go,
	// delta.go), compressed without entropy coding; falls back to full.
	ModeDelta
	// ModeDeltaZstd is ModeDelta with entropy coding; falls back to zstd,
	// then full.
	ModeDeltaZstd
	// ModeSummary carries only a Summary record; the payload waits.
	ModeSummary

	numModes
)

var modeNames = enumNames{what: "mode", Names: enum.Names{Short: "mode", First: 1, List: []string{"", "full", "zstd", "delta", "delta+zstd", "summary"}}, bad: ErrBadMode}

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m > 0 && m < numModes }

// IsDelta reports whether m uses a base.
func (m Mode) IsDelta() bool { return m == ModeDelta || m == ModeDeltaZstd }

// isData reports whether m encodes payload bytes (everything but summary).
func (m Mode) isData() bool { return m >= ModeFull && m <= ModeDeltaZstd }

// String returns the mode's name, e.g. "delta+zstd".
func (m Mode) String() string { return modeNames.String(uint8(m)) }

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return modeNames.marshal(uint8(m)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mode) UnmarshalText(b []byte) error { return enum.UnmarshalText(m, b, ParseMode) }

// ParseMode accepts a mode's name, case-insensitive; "delta-zstd" is
// accepted for "delta+zstd".
func ParseMode(s string) (Mode, error) {
	v, err := modeNames.parse(s, strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-zstd", "+zstd"))
	return Mode(v), err
}

// Level is the compression effort the sender chooses; the decoder does not
// need it. Higher levels cost encoder CPU and give smaller output.
type Level uint8

// The levels map to klauspost zstd's SpeedFastest, SpeedDefault,
// SpeedBetterCompression and SpeedBestCompression (roughly zstd -1, -3, -7,
// -11).
const (
	LevelFastest Level = iota + 1
	LevelDefault
	LevelBetter
	LevelBest

	numLevels
)

var levelNames = enumNames{what: "level", Names: enum.Names{Short: "level", First: 1, List: []string{"", "fastest", "default", "better", "best"}}, bad: ErrBadLevel}

// Valid reports whether l is a known level.
func (l Level) Valid() bool { return l > 0 && l < numLevels }

// String returns the level's name, e.g. "best".
func (l Level) String() string { return levelNames.String(uint8(l)) }

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return levelNames.marshal(uint8(l)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error { return enum.UnmarshalText(l, b, ParseLevel) }

// ParseLevel accepts a level's name, case-insensitive.
func ParseLevel(s string) (Level, error) {
	v, err := levelNames.parse(s, strings.ToLower(strings.TrimSpace(s)))
	return Level(v), err
}

// Levels lists every level, fastest first.
func Levels() []Level { return []Level{LevelFastest, LevelDefault, LevelBetter, LevelBest} }

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelFastest:
		return zstd.SpeedFastest
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	default:
		return zstd.SpeedDefault
	}
}

// LevelFor is the default level for a link class: CPU is cheap next to a
// slow link and dear next to a fast one. Fiber sends uncompressed by default,
// so its level only matters if a profile turns compression on.
func LevelFor(c edgesync.LinkClass) Level {
	switch c {
	case edgesync.Fiber:
		return LevelFastest
	case edgesync.Broadband:
		return LevelDefault
	case edgesync.Mobile, edgesync.Unknown:
		return LevelBetter
	default: // satellite, intermittent: every byte counts
		return LevelBest
	}
}
