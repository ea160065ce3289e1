// Package agent is the edge agent: endpoints, link monitors, the sender and
// the local control API.
package agent
