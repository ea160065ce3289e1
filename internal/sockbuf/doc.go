// Package sockbuf passes socket buffer sizes through the net.PacketConn
// wrappers that quic.Transport is given (budget.Conn, linksim.Conn) to
// the socket below them. quic-go asks its conn for larger buffers and
// logs a warning when it cannot set them; a wrapper that only embeds
// net.PacketConn hides the socket's methods.
package sockbuf
