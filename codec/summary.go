package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Bounds of a Summary record.
const (
	// MaxSummaryKey is the longest key a summary may carry.
	MaxSummaryKey = 4 << 10
	// MaxSummaryData is the most producer summary bytes a summary may carry.
	MaxSummaryData = 64 << 10

	summaryVersion = 1
)

// Summary is what is sent in place of a payload that can wait: the key, the
// payload's size and hash, when it was produced, and the producer's optional
// summary bytes.
type Summary struct {
	// Key names the object.
	Key string
	// Size is the full payload's length.
	Size int64
	// Hash is the full payload's SHA-256.
	Hash Hash
	// Time is when the producer made the payload; the zero Time is kept as
	// zero, others come back in UTC with nanosecond precision.
	Time time.Time
	// Data is the producer's summary bytes, possibly empty.
	Data []byte
}

// Append appends s's encoding to b.
func (s *Summary) Append(b []byte) ([]byte, error) {
	if err := s.validate(); err != nil {
		return b, fmt.Errorf("append summary: %w", err)
	}
	b = append(b, summaryVersion)
	b = binary.AppendUvarint(b, uint64(len(s.Key)))
	b = append(b, s.Key...)
	b = binary.AppendUvarint(b, uint64(s.Size))
	b = append(b, s.Hash[:]...)
	var t int64
	if !s.Time.IsZero() {
		t = s.Time.UnixNano()
	}
	b = binary.AppendVarint(b, t)
	b = binary.AppendUvarint(b, uint64(len(s.Data)))
	return append(b, s.Data...), nil
}

var (
	minSummaryTime = time.Unix(0, -1<<63+1)
	maxSummaryTime = time.Unix(0, 1<<63-1)
)

func (s *Summary) validate() error {
	switch {
	case len(s.Key) == 0:
		return fmt.Errorf("empty key: %w", ErrBadParam)
	case len(s.Key) > MaxSummaryKey:
		return fmt.Errorf("key %d bytes above %d: %w", len(s.Key), MaxSummaryKey, ErrTooLarge)
	case s.Size < 0:
		return fmt.Errorf("negative size %d: %w", s.Size, ErrBadParam)
	case len(s.Data) > MaxSummaryData:
		return fmt.Errorf("data %d bytes above %d: %w", len(s.Data), MaxSummaryData, ErrTooLarge)
	case !s.Time.IsZero() && (s.Time.Before(minSummaryTime) || s.Time.After(maxSummaryTime) || s.Time.UnixNano() == 0):
		return fmt.Errorf("time %s not representable: %w", s.Time, ErrBadParam)
	}
	return nil
}

// ParseSummary parses a summary from the start of b and returns it with the
// number of bytes used; a truncated record gives io.ErrUnexpectedEOF. Data
// is a copy, not an alias of b.
func ParseSummary(b []byte) (Summary, int, error) {
	r := bytes.NewReader(b)
	var s Summary
	v, err := r.ReadByte()
	if err != nil {
		return s, 0, fmt.Errorf("parse summary: %w", eofIsUnexpected(err))
	}
	if v != summaryVersion {
		return s, 0, fmt.Errorf("parse summary: version %d, want %d: %w", v, summaryVersion, ErrCorrupt)
	}
	kl, err := readUvarint(r, "key length", MaxSummaryKey)
	if err != nil {
		return s, 0, fmt.Errorf("parse summary: %w", err)
	}
	key := make([]byte, kl)
	if err := readFull(r, key); err != nil {
		return s, 0, fmt.Errorf("parse summary: key: %w", err)
	}
	s.Key = string(key)
	size, err := readUvarint(r, "size", 1<<63-1)
	if err != nil {
		return s, 0, fmt.Errorf("parse summary: %w", err)
	}
	s.Size = int64(size)
	if err := readFull(r, s.Hash[:]); err != nil {
		return s, 0, fmt.Errorf("parse summary: hash: %w", err)
	}
	ut, err := readUvarint(r, "time", 1<<64-1)
	if err != nil {
		return s, 0, fmt.Errorf("parse summary: %w", err)
	}
	t := int64(ut>>1) ^ -int64(ut&1) // zigzag, as binary.AppendVarint writes
	if t != 0 {
		s.Time = time.Unix(0, t).UTC()
	}
	dl, err := readUvarint(r, "data length", MaxSummaryData)
	if err != nil {
		return s, 0, fmt.Errorf("parse summary: %w", err)
	}
	if dl > 0 {
		s.Data = make([]byte, dl)
		if err := readFull(r, s.Data); err != nil {
			return s, 0, fmt.Errorf("parse summary: data: %w", err)
		}
	}
	if err := s.validate(); err != nil {
		return Summary{}, 0, fmt.Errorf("parse summary: %w", err)
	}
	return s, len(b) - r.Len(), nil
}
