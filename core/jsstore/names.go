package jsstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Token rules (docs/jetstream.md, "Names"): an agent name or a key becomes
// one NATS subject token and one part of a KV key. Bytes A-Z a-z 0-9 '-'
// '_' '/' stay as they are; every other byte, '.' and '=' included, is
// written "=XX" (two upper-case hex digits). The empty string is "=". A
// token longer than maxToken after escaping is "==" followed by the hex
// SHA-256 of the raw name, so that subjects stay short; the raw name is
// always in the messages' headers. The mapping is one-to-one: an escaped
// token never starts with "==", and '=' only ever starts an escape.

// maxToken bounds an escaped token; longer ones are hashed.
const maxToken = 255

// Token returns the subject token of an agent name or key.
func Token(s string) string {
	if s == "" {
		return "="
	}
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('=')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		}
		if b.Len() > maxToken {
			sum := sha256.Sum256([]byte(s))
			return "==" + hex.EncodeToString(sum[:])
		}
	}
	return b.String()
}

// ParseToken returns the name a token stands for, and false for a hashed
// token or one that no name gives.
func ParseToken(t string) (string, bool) {
	if t == "=" {
		return "", true
	}
	if t == "" || strings.HasPrefix(t, "==") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '=':
			if i+2 >= len(t) {
				return "", false
			}
			v, err := hex.DecodeString(t[i+1 : i+3])
			if err != nil || t[i+1:i+3] != strings.ToUpper(t[i+1:i+3]) || tokenSafe(v[0]) {
				return "", false
			}
			b.WriteByte(v[0])
			i += 2
		case tokenSafe(c):
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	return b.String(), true
}

func tokenSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/'
}

// Buckets, streams and subjects of a store with prefix P (docs/jetstream.md):
//
//	KV P_state       <agent>.<key>   current version of each key, with history
//	KV P_summaries   <agent>.<key>   latest summary of each key
//	KV P_applied     <agent>.<op>    applied-op index of state ops (create-only), max age
//	KV P_partials    <agent>.<op>    partial ops in JetStream
//	KV P_agents      <agent>         per-agent counters
//	stream P_events  P.ev.<agent>.<key>    one message per event
//	                 P.applied.<agent>.<op> its applied marker (create-only, TTL)
//	stream P_data    P.data.<agent>.<blob> chunks of data over InlineMax
const (
	bucketState     = "state"
	bucketSummaries = "summaries"
	bucketApplied   = "applied"
	bucketPartials  = "partials"
	bucketAgents    = "agents"
	streamEvents    = "events"
	streamData      = "data"
	subjEvents      = "ev"
	subjData        = "data"
	subjApplied     = "applied" // event ops' applied markers, in P_events (events.go)
)

// Headers on state entries, events, summaries and data chunks.
const (
	HdrOp       = "Edge-Sync-Op"       // op ID, 32 hex digits
	HdrAgent    = "Edge-Sync-Agent"    // agent name, URL-path-escaped
	HdrKey      = "Edge-Sync-Key"      // key, URL-path-escaped
	HdrKind     = "Edge-Sync-Kind"     // "state" or "event"
	HdrPriority = "Edge-Sync-Priority" // "critical" ... "bulk"
	HdrSize     = "Edge-Sync-Size"     // data bytes
	HdrSHA256   = "Edge-Sync-Sha256"   // data SHA-256, hex
	HdrVersion  = "Edge-Sync-Version"  // state: the key's version counter
	HdrStored   = "Edge-Sync-Stored"   // RFC 3339 time the core stored it
	HdrData     = "Edge-Sync-Data"     // subject of the chunks when not inline
	HdrTime     = "Edge-Sync-Time"     // summary: when the producer made it
	HdrOffset   = "Edge-Sync-Offset"   // data chunk: byte offset in the op
	HdrOwner    = "Edge-Sync-Owner"    // data marker: "state" or "event"
	HdrSeq      = "Edge-Sync-Seq"      // data marker: the owning event's sequence
)

type names struct{ prefix string }

func (n names) bucket(what string) string  { return n.prefix + "_" + what }
func (n names) stream(what string) string  { return n.prefix + "_" + what }
func (n names) subject(what string) string { return n.prefix + "." + what }

func kvStream(bucket string) string { return "KV_" + bucket }

// agentKey is the KV key of an agent's key (state, summaries) or op
// (applied, partials): "<agent>.<rest>".
func agentKey(agent, rest string) string { return Token(agent) + "." + rest }

func (n names) stateSubject(agent, key string) string {
	return "$KV." + n.bucket(bucketState) + "." + agentKey(agent, Token(key))
}

func (n names) summarySubject(agent, key string) string {
	return "$KV." + n.bucket(bucketSummaries) + "." + agentKey(agent, Token(key))
}

func (n names) eventSubject(agent, key string) string {
	return n.subject(subjEvents) + "." + agentKey(agent, Token(key))
}

// agentFilter is the wildcard subject of an agent's messages under root
// (a stream's subject root or "$KV.<bucket>").
func agentFilter(root, agent string) string { return root + "." + Token(agent) + ".>" }

func (n names) dataSubject(agent, blob string) string {
	return n.subject(subjData) + "." + Token(agent) + "." + blob
}
