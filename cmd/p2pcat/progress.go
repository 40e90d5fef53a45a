package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2psock/p2psock/p2psock"
)

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n atomic.Int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// showProgress prints, once a second on stderr if it is a terminal, how
// many bytes went each way on stream c, the rate and the path kind, on one
// line it rewrites; stop ends it with a last line. When stderr is not a
// terminal (a script's log) it prints nothing.
func showProgress(stderr io.Writer, c *p2psock.Conn, sent, received *atomic.Int64) (stop func()) {
	if !isTerminalWriter(stderr) {
		return func() {}
	}
	start := time.Now()
	line := func() {
		total := sent.Load() + received.Load()
		secs := time.Since(start).Seconds()
		path := "direct"
		if c.Path().Relayed {
			path = "relayed"
		}
		fmt.Fprintf(stderr, "\rp2pcat: sent %s, received %s, %s/s, %s   ", size(sent.Load()), size(received.Load()), size(int64(float64(total)/max(secs, 0.001))), path)
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		line()
		fmt.Fprintln(stderr)
	}
}

// size is n bytes in binary units.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminalWriter reports whether w is a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
