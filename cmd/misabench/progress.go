package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on stderr, drawn only on a terminal; its
// total may be set up front (start) or by the first update.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	desc string
	bar  *progressbar.ProgressBar
}

func newProgress(w io.Writer, tty bool, desc string) *progress {
	if !tty {
		return nil
	}
	return &progress{w: w, desc: desc}
}

// start draws the bar at 0 of total (no-op on nil or without a total).
func (p *progress) start(total int) {
	if p == nil || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked(total)
}

func (p *progress) startLocked(total int) {
	if p.bar != nil {
		return
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSetWidth(30),
	)
}

// update is a Progress callback (a no-op on nil, so that p.update can be
// passed whether or not there is a bar).
func (p *progress) update(done, total int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 {
		p.startLocked(total)
	}
	if p.bar != nil {
		p.bar.Set(done)
	}
}

// finish clears the bar (safe on nil).
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprint(p.w, "\r\033[K")
	}
}
