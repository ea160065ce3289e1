package jsstore

import (
	"syscall"
	"testing"
	"time"
)

// selfCPU is the CPU time (user and system) this process has used so far:
// with the NATS server, the core and the simulated agents all in the
// benchmark's process, the CPU an op costs them all, which a loaded
// machine changes less than their ops/s.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
