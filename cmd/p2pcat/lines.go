package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/p2psock/p2psock/p2psock"
)

// line is one line of input (without its end, "\n" or "\r\n"), or the
// error that ended the input.
type line struct {
	b   []byte
	err error
}

// readLines reads r's lines in a goroutine of its own, so that a mode
// waiting for input still ends when its context does. Lines of up to max
// bytes are sent on the channel, which closes at the end of r; a longer
// line, or a read error, is sent as an error and ends the reading. stop
// ends the goroutine (unless it is blocked in r's Read: the process exits,
// or the caller closes r).
func readLines(r io.Reader, max int) (lines <-chan line, stop func()) {
	ch := make(chan line)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, 64<<10)
		for k := 1; ; k++ {
			var buf []byte
			var err error
			for {
				var frag []byte
				frag, err = br.ReadSlice('\n')
				if len(buf)+len(frag) > max+2 { // room for "\r\n"
					err = fmt.Errorf("line %d is longer than %d bytes, the largest message", k, max)
					break
				}
				buf = append(buf, frag...)
				if !errors.Is(err, bufio.ErrBufferFull) {
					break
				}
			}
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = nil // a last line without its end
			}
			if err == nil {
				buf = bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
				if len(buf) > max {
					err = fmt.Errorf("line %d is longer than %d bytes, the largest message", k, max)
				}
			}
			l := line{b: buf, err: err}
			if errors.Is(err, io.EOF) {
				return
			}
			select {
			case ch <- l:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() { close(done) }
}

// eachLine calls send with each line of in (a message of up to
// p2psock.MaxMessageSize bytes), each call bounded by -timeout, until in
// ends, send fails or ctx ends.
func eachLine(ctx context.Context, o *options, in io.Reader, send func(ctx context.Context, line []byte) error) error {
	if in == nil {
		return nil
	}
	lines, stop := readLines(in, p2psock.MaxMessageSize)
	defer stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			if l.err != nil {
				return fmt.Errorf("reading stdin: %w", l.err)
			}
			sctx, cancel := context.WithTimeout(ctx, o.timeout)
			err := send(sctx, l.b)
			cancel()
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
