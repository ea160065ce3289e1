package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/edge-sync/edge-sync/core"
)

// notFound adds to a not-found answer of core ls/get which command lists
// what the core has, addressed as the operator addressed it.
func (f *coreReadFlags) notFound(err error, what string) error {
	if !errors.Is(err, core.ErrNotFound) {
		return coreReadErr(err)
	}
	ls := "edge-sync core ls" + f.where()
	agents := ls + " lists the agents"
	switch what {
	case "agent":
		return fmt.Errorf("agent %q: %w (%s)", f.agent, err, agents)
	case "events":
		return fmt.Errorf("%w (%s --agent %s --events lists its events; %s)", err, ls, f.agent, agents)
	default: // a key
		return fmt.Errorf("key %q: %w (%s --agent %s lists its keys; %s)", what, err, ls, f.agent, agents)
	}
}

// eventNotFound is notFound for the event seq.
func (f *coreReadFlags) eventNotFound(err error, seq uint64) error {
	if !errors.Is(err, core.ErrNotFound) {
		return coreReadErr(err)
	}
	return fmt.Errorf("event %s: %w", strconv.FormatUint(seq, 10), f.notFound(err, "events"))
}

// where is the flags that name the core's data, as given.
func (f *coreReadFlags) where() string {
	s := ""
	if f.cfgPath != "" {
		s += " --config " + f.cfgPath
	}
	if f.dataDir != "" {
		s += " --data-dir " + f.dataDir
	}
	return s
}

// natsDownError is a JetStream store that could not be opened for
// reading: what is missing is NATS, not a running core.
type natsDownError struct {
	urls []string
	err  error
}

func (e *natsDownError) Error() string {
	return fmt.Sprintf("%v: is NATS running and reachable at %s (store.urls)?", e.err, strings.Join(e.urls, ", "))
}

func (e *natsDownError) Unwrap() error { return e.err }
