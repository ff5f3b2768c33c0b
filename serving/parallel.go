package serving

import (
	"context"
	"sync"
)

// ForEach calls f(ctx, i) for every i in [0, n) on up to workers
// goroutines (at least one), in order of i as workers free up. The first
// error cancels the context the other calls see, stops the calls not yet
// started, and is returned once every call has returned; without one,
// ForEach returns the context's error (nil unless ctx ended).
func ForEach(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	jobs := make(chan int)
	for range min(max(workers, 1), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() {
						firstErr = err
						cancel()
					})
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
