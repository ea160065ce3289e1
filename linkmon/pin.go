package linkmon

import (
	"fmt"
	"strings"

	edgesync "github.com/edge-sync/edge-sync"
)

// Pin is an operator's override of the measured link (transport.switch):
// a class, a mode, both, or neither ("auto").
type Pin struct {
	// Class, when set, replaces the measured class.
	Class *edgesync.LinkClass `json:"class,omitempty"`
	// Mode, when set, replaces the mode of the (pinned or measured)
	// class's parameters.
	Mode *edgesync.SyncMode `json:"mode,omitempty"`
}

// Auto reports whether nothing is pinned.
func (p Pin) Auto() bool { return p.Class == nil && p.Mode == nil }

// String renders the pin: "auto", "class=satellite", "mode=delta" or both.
func (p Pin) String() string {
	if p.Auto() {
		return "auto"
	}
	var parts []string
	if p.Class != nil {
		parts = append(parts, "class="+p.Class.String())
	}
	if p.Mode != nil {
		parts = append(parts, "mode="+p.Mode.String())
	}
	return strings.Join(parts, " ")
}

// Validate reports a pin naming an unknown class or mode.
func (p Pin) Validate() error {
	if p.Class != nil && !p.Class.Valid() {
		return fmt.Errorf("pin: %w: class %v", ErrInvalidPin, *p.Class)
	}
	if p.Mode != nil && !p.Mode.Valid() {
		return fmt.Errorf("pin: %w: mode %v", ErrInvalidPin, *p.Mode)
	}
	return nil
}

// ParsePin reads transport.switch's argument: "auto", a class name
// ("satellite") or a mode name ("delta+zstd"). The names do not overlap.
func ParsePin(s string) (Pin, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		return Pin{}, nil
	}
	if c, err := edgesync.ParseLinkClass(s); err == nil {
		return Pin{Class: &c}, nil
	}
	if m, err := edgesync.ParseSyncMode(s); err == nil {
		return Pin{Mode: &m}, nil
	}
	return Pin{}, fmt.Errorf("parse pin %q: %w (want auto, a link class: %s, or a sync mode: %s)", s, ErrInvalidPin, pinClassNames(), pinModeNames())
}

// pinClassNames and pinModeNames are the names ParsePin takes, for its
// error: the classes an operator can pin (not unknown) and the modes.
func pinClassNames() string {
	var n []string
	for _, c := range edgesync.LinkClasses() {
		if c != edgesync.Unknown {
			n = append(n, c.String())
		}
	}
	return strings.Join(n, ", ")
}

func pinModeNames() string {
	var n []string
	for _, m := range edgesync.SyncModes() {
		n = append(n, m.String())
	}
	return strings.Join(n, ", ")
}

// Effective returns the class and parameters the sender should use: the
// measured status's, unless the pin overrides them. A pinned class takes
// that class's parameters at the measured bandwidth. A pinned mode keeps
// the class's other parameters and makes compression agree with the mode:
// full turns it off, the zstd modes and store-and-forward turn it on, and
// only delta+zstd keeps the class's summary-only setting.
// Store-and-forward also drains by priority.
func (a *Adjuster) Effective(st Status, pin Pin) (edgesync.LinkClass, SyncParameters) {
	class := st.Class
	if pin.Class != nil && pin.Class.Valid() {
		class = *pin.Class
	}
	p := a.Parameters(class, st.Median.BandwidthBps)
	if pin.Mode == nil || !pin.Mode.Valid() {
		return class, p
	}
	mode := *pin.Mode
	p.Mode = mode
	switch mode {
	case edgesync.SyncFull:
		p.Compression, p.Level = false, LevelNone
	default:
		if !p.Compression || p.Level == LevelNone {
			p.Compression, p.Level = true, LevelDefault
		}
	}
	if mode != edgesync.SyncDeltaZstd {
		p.SummaryOnly = false
	}
	if mode == edgesync.SyncStoreAndForward {
		p.PriorityQueue = true
	}
	return class, p
}
