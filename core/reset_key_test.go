package core

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"testing"
)

// The reset key is the same for the same TLS key (a restarted core resets
// the connections of the one before it) and differs between keys.
func TestStatelessResetKeyFromTLSKey(t *testing.T) {
	conf := func() *tls.Config {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{{PrivateKey: k}}}
	}
	a, b := conf(), conf()
	ka1, err := statelessResetKey(a)
	if err != nil {
		t.Fatal(err)
	}
	ka2, err := statelessResetKey(a.Clone())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := statelessResetKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if *ka1 != *ka2 {
		t.Error("the same TLS key gave two reset keys")
	}
	if *ka1 == *kb {
		t.Error("two TLS keys gave the same reset key")
	}
	if _, err := statelessResetKey(&tls.Config{}); err == nil {
		t.Error("a TLS config without a certificate gave a reset key")
	}
}
