package wire

import edgesync "github.com/edge-sync/edge-sync"

// ResumeQuery asks the core how much of an op's encoded stream it already
// holds, before the agent resends it.
type ResumeQuery struct {
	ID edgesync.OpID
}

// Type returns FrameResumeQuery.
func (f *ResumeQuery) Type() FrameType { return FrameResumeQuery }

// Len returns the number of bytes Append adds.
func (f *ResumeQuery) Len() int { return frameLen(FrameResumeQuery, 16) }

// Append appends the encoded frame to b.
func (f *ResumeQuery) Append(b []byte) ([]byte, error) {
	b, err := appendHeader(b, FrameResumeQuery, 16)
	if err != nil {
		return b, err
	}
	return append(b, f.ID[:]...), nil
}

func parseResumeQuery(r *bodyReader) (Frame, error) {
	f := &ResumeQuery{}
	r.fixed("op id", f.ID[:])
	return f, r.err
}
