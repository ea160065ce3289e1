// Package wire is the framing protocol that agent and core speak on QUIC
// streams and datagrams.
package wire
