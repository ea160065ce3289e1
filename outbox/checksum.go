package outbox

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	edgesync "github.com/edge-sync/edge-sync"
)

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A chunk's payload is checksummed in blocks of the file's sum_block
// bytes (the last block of a chunk may be shorter). Each block's sum is
// CRC-32C over the op ID, the chunk index and the block index (big endian)
// followed by the block's bytes, so a block that reads back intact but
// from the wrong place (another op's page, another offset) fails too. The
// sums of a chunk are stored together, 4 bytes each, under its "s" key.

// blockSum returns the checksum of block j of chunk i of op id.
func blockSum(id edgesync.OpID, i, j uint32, block []byte) uint32 {
	var pos [24]byte
	copy(pos[:], id[:])
	binary.BigEndian.PutUint32(pos[16:], i)
	binary.BigEndian.PutUint32(pos[20:], j)
	return crc32.Update(crc32.Update(0, castagnoli, pos[:]), castagnoli, block)
}

// numBlocks is how many checksums a chunk of n bytes has.
func numBlocks(n, sumBlock int) int { return (n + sumBlock - 1) / sumBlock }

// blockSums returns the checksums of chunk i of op id.
func blockSums(id edgesync.OpID, i uint32, data []byte, sumBlock int) []byte {
	sums := make([]byte, 0, 4*numBlocks(len(data), sumBlock))
	for j := 0; j*sumBlock < len(data); j++ {
		end := min((j+1)*sumBlock, len(data))
		sums = binary.BigEndian.AppendUint32(sums, blockSum(id, i, uint32(j), data[j*sumBlock:end]))
	}
	return sums
}

// checkBlocks verifies the blocks of chunk i (at payload offset off) that
// hold data[from:to]. It returns an error wrapping ErrDamaged that says
// which bytes failed.
func checkBlocks(id edgesync.OpID, i uint32, off int64, data, sums []byte, from, to, sumBlock int) error {
	if len(sums) != 4*numBlocks(len(data), sumBlock) {
		return fmt.Errorf("chunk %d has %d bytes of checksums for %d bytes of data: %w", i, len(sums), len(data), ErrDamaged)
	}
	if from >= to {
		return nil
	}
	for j := from / sumBlock; j*sumBlock < to; j++ {
		end := min((j+1)*sumBlock, len(data))
		if blockSum(id, i, uint32(j), data[j*sumBlock:end]) != binary.BigEndian.Uint32(sums[4*j:]) {
			return fmt.Errorf("payload bytes %d..%d (chunk %d) fail their checksum: %w", off+int64(j*sumBlock), off+int64(end), i, ErrDamaged)
		}
	}
	return nil
}
