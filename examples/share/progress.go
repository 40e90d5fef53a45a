package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressBar is an io.Writer that counts the bytes written through it and
// redraws a one-line bar, at most 10 times a second:
//
//	[=============>                ]  45%  3.6 MiB / 8.0 MiB  41.2 MiB/s
type progressBar struct {
	w         io.Writer
	total     int64
	done      int64
	start     time.Time
	lastDrawn time.Time
}

func newProgressBar(w io.Writer, total int64) *progressBar {
	now := time.Now()
	b := &progressBar{w: w, total: total, start: now, lastDrawn: now}
	b.draw()
	return b
}

func (b *progressBar) Write(p []byte) (int, error) {
	b.done += int64(len(p))
	if now := time.Now(); now.Sub(b.lastDrawn) >= 100*time.Millisecond {
		b.lastDrawn = now
		b.draw()
	}
	return len(p), nil
}

// finish draws the final state and ends the line.
func (b *progressBar) finish() {
	b.draw()
	fmt.Fprintln(b.w)
}

func (b *progressBar) draw() {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(b.done) / float64(b.total)
	}
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	rate := ""
	if secs := time.Since(b.start).Seconds(); secs > 0 {
		rate = formatSize(int64(float64(b.done)/secs)) + "/s"
	}
	fmt.Fprintf(b.w, "\r[%s] %3.0f%%  %s / %s  %-12s", bar, frac*100, formatSize(b.done), formatSize(b.total), rate)
}
