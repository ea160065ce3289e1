// Package outbox is the durable, bounded priority queue of operations that
// wait on the edge for a link, stored in a bbolt file.
package outbox
