package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestRun: a single server takes a KV write and reads it back.
func TestRun(t *testing.T) {
	s := Run(t)
	_, js := Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("w")); err == nil {
		t.Fatal("second Create of a key succeeded")
	}
}

// TestClusterSurvivesANode: an R3 stream keeps taking writes with one of
// three nodes stopped, and the node comes back.
func TestClusterSurvivesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := RunCluster(t, 3)
	_, js := Connect(t, c.URLs()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("a")); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	// The client may have been connected to node 0: publish until it has
	// reconnected and the stream has a leader again.
	var err error
	for range 200 {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = js.Publish(pctx, "s.2", []byte("b"))
		pcancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("publish with a node down: %v", err)
	}
	c.Start(0)
	if len(c.URLs()) != 3 {
		t.Fatalf("%d nodes running after restart", len(c.URLs()))
	}
}
