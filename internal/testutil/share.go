package testutil

import (
	"sync"
	"sync/atomic"
)

// Share runs the steps 0 to n-1 on workers goroutines, each taking the
// next step left until none is or one of its steps fails, and returns the
// first error, once every worker has ended. step gets the step's number
// and its worker's (0 to workers-1): a benchmark's b.N ops by as many
// writers.
func Share(n, workers int, step func(i, w int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := step(i, w); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
