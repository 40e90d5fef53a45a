package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// streamConnect is "p2pcat <ID>": a stream to the node id, with stdin going
// to the peer and the peer's bytes to stdout.
func streamConnect(ctx context.Context, o *options, id p2psock.ID, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, "", func(n *p2psock.Node, _ *dht.DHT) error {
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		c, err := n.Connect(cctx, id)
		if err != nil {
			return fmt.Errorf("connect %s: %w", short(id), err)
		}
		defer c.Close()
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: connected to %s (%s)\n", id, pathKind(c))
		}
		return pipe(ctx, c, newPump(stdin), stdout)
	})
}

// streamListen is "p2pcat -l [-k]": it accepts a stream (with -k, one after
// another) and pipes stdin and stdout through it.
func streamListen(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, "", func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stderr, "listening as %s\n", n.ID())
		in := newPump(stdin)
		for {
			c, err := n.AcceptContext(ctx)
			if err != nil {
				return err
			}
			if o.verbose > 0 {
				fmt.Fprintf(stderr, "p2pcat: stream from %s (%s)\n", c.RemoteAddr(), pathKind(c))
			}
			err = pipe(ctx, c, in, stdout)
			c.Close()
			if err != nil || !o.keep {
				return err
			}
		}
	})
}

// pump reads stdin once, for one stream after another (-k).
type pump struct {
	ch       chan []byte
	err      error // set before ch closes
	pending  []byte
	terminal bool // stdin is a terminal
}

func newPump(r io.Reader) *pump {
	p := &pump{ch: make(chan []byte, 4), terminal: isTerminal(r)}
	go func() {
		for {
			b := make([]byte, 64<<10)
			n, err := r.Read(b)
			if n > 0 {
				p.ch <- b[:n]
			}
			if err != nil {
				if err != io.EOF {
					p.err = err
				}
				close(p.ch)
				return
			}
		}
	}()
	return p
}

// pipe copies the pump to c and c to out. The end of the input half-closes
// c. It returns once both directions are done; but when the peer closes its
// side while the input is a terminal (a person who may never type ^D), it
// stops there.
func pipe(ctx context.Context, c *p2psock.Conn, in *pump, out io.Writer) error {
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, c)
		readDone <- err
	}()
	inputDone := false
	for {
		if in.pending == nil && !inputDone {
			select {
			case b, ok := <-in.ch:
				if !ok {
					inputDone = true
					if err := c.CloseWrite(); err != nil {
						return err
					}
					if in.err != nil {
						return fmt.Errorf("reading stdin: %w", in.err)
					}
					continue
				}
				in.pending = b
			case err := <-readDone:
				if err != nil || in.terminal {
					return finishRead(c, err)
				}
				readDone = nil // the peer is done; send the rest of the input
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if in.pending != nil {
			if _, err := c.Write(in.pending); err != nil {
				select {
				case rerr := <-readDone: // the peer went away: report why
					if rerr != nil {
						return rerr
					}
				default:
				}
				return err
			}
			in.pending = nil
			continue
		}
		if readDone == nil {
			return nil // both directions are done
		}
		select {
		case err := <-readDone:
			return finishRead(c, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishRead ends a stream whose peer finished sending: this side's
// sending ends too.
func finishRead(c *p2psock.Conn, err error) error {
	if err != nil {
		return err
	}
	return c.CloseWrite()
}

// pathKind says how a stream reaches its peer, for -v.
func pathKind(c *p2psock.Conn) string {
	p := c.Path()
	if p.Relayed {
		return "relayed via " + p.Remote.String()
	}
	return "direct to " + p.Remote.String()
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
