package wire

import (
	"time"

	"github.com/quic-go/quic-go"
)

// QUICConfig returns the quic-go settings that agent and core share.
//
// Flow-control windows are sized for long fat links: quic-go's default
// 512 KiB stream window caps a stream near 7 Mbit/s at 600 ms RTT until
// auto-tuning catches up, so windows start at 4 MiB per stream and 16 MiB
// per connection and may grow to 64/256 MiB. maxStreams bounds the op
// streams a peer may have open at once. Datagrams carry link probes.
func QUICConfig(maxStreams int) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           10 * time.Second,
		MaxIdleTimeout:                 45 * time.Second,
		KeepAlivePeriod:                10 * time.Second,
		InitialStreamReceiveWindow:     4 << 20,
		MaxStreamReceiveWindow:         64 << 20,
		InitialConnectionReceiveWindow: 16 << 20,
		MaxConnectionReceiveWindow:     256 << 20,
		MaxIncomingStreams:             int64(maxStreams),
		MaxIncomingUniStreams:          -1, // the protocol uses no unidirectional streams
		EnableDatagrams:                true,
	}
}
