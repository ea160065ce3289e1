package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
)

// damaged adds to a core get of what that failed because the core's
// stored copy is damaged what it means and what to do (docs/integrity.md,
// "What an operator does"). Read from the store, the error is
// core.ErrCorrupt; through a running core, the answer's status is sent
// before its bytes are read, so the core can only cut the answer short
// (it logs why): the client sees io.ErrUnexpectedEOF.
func (f *coreReadFlags) damaged(err error, what string) error {
	verify := "edge-sync core verify --config FILE"
	switch {
	case f.cfgPath != "":
		verify = "edge-sync core verify --config " + f.cfgPath
	case f.dataDir != "":
		cfg := config.DefaultCore()
		cfg.DataDir = f.dataDir
		verify = "edge-sync core verify --file " + cfg.StorePath()
	}
	then := "with the core stopped, '" + verify + "' lists everything damaged; the core's copy of " + what +
		" is lost (its agent deleted its own once the core acknowledged it), so its producer must put it again (docs/integrity.md)"
	switch {
	case errors.Is(err, core.ErrCorrupt):
		return fmt.Errorf("%w\nThe core's stored copy of %s is damaged: %s", err, what, then)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w\nThe running core stopped sending %s before its end: its stored copy is most likely damaged "+
			"(the core's log says why: 'data not fully written'), or the core stopped. If damaged: %s", err, what, then)
	}
	return err
}

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
