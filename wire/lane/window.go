package lane

// OpWindow bounds the encoded bytes of one op attempt's data on a lane,
// for DATA frames of chunks of chunkSize bytes: 8 MiB, or two chunks with
// their frame headers where that is more. A sender keeps at most this much
// of one op in Sends that have not returned (it may send less, as the
// link's bandwidth-delay product allows). A receiver holds only what
// arrived ahead of its turn, which is part of that, and refuses more than
// twice OpWindow per op: a margin over what a sender keeping to it sends,
// so that only a broken or hostile peer is refused.
func OpWindow(chunkSize int) int64 {
	return max(8<<20, 2*(int64(chunkSize)+frameSlack))
}

// frameSlack is room for a DATA frame's header (type, length, op ID,
// offset, chunk mode and lengths) around a chunk's encoded bytes.
const frameSlack = 4096
