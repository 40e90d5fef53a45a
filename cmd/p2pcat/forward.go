package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// localAddr is a local stream address of a forward: "host:port" (TCP) or
// "unix:/path" (a unix socket).
type localAddr struct{ network, addr string }

// parseLocalAddr parses a forward's address.
func parseLocalAddr(s string) (localAddr, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return localAddr{}, cli.Usagef("bad address %q: want unix:/path", s)
		}
		return localAddr{"unix", path}, nil
	}
	s = strings.TrimPrefix(s, "tcp:")
	if _, _, err := net.SplitHostPort(s); err != nil {
		return localAddr{}, cli.Usagef("bad address %q: want host:port or unix:/path", s)
	}
	return localAddr{"tcp", s}, nil
}

func (a localAddr) String() string {
	if a.network == "unix" {
		return "unix:" + a.addr
	}
	return a.addr
}

// forwardFrom is "p2pcat -from ADDR <ID>": it listens on the local address
// ADDR and forwards each connection made to it as one stream to the node
// id, until interrupted.
func forwardFrom(ctx context.Context, o *options, id p2psock.ID, stdout, stderr io.Writer) error {
	from, err := parseLocalAddr(o.from)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, from.network, from.addr)
	if err != nil {
		return failf("listen on "+from.String(), err)
	}
	defer ln.Close()
	if from.network == "unix" {
		defer os.Remove(from.addr)
	}
	return withNode(ctx, o, stderr, nodeSpec{}, func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stderr, "forwarding %s to %s\n", ln.Addr(), id)
		stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
		defer stopAccept()
		var wg sync.WaitGroup
		defer wg.Wait()
		slots := make(chan struct{}, maxStreams)
		for {
			lc, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return failf("accept on "+from.String(), err)
			}
			select {
			case slots <- struct{}{}:
			default:
				lc.Close()
				continue
			}
			wg.Go(func() {
				defer func() { <-slots }()
				defer lc.Close()
				c, err := connectPeer(ctx, o, n, id, stderr)
				if err != nil {
					if ctx.Err() == nil {
						fmt.Fprintf(stderr, "p2pcat: %s\n", failf("connect to "+short(id), err))
					}
					return
				}
				defer c.Close()
				if o.verbose > 0 {
					fmt.Fprintf(stderr, "p2pcat: %s -> %s (%s)\n", lc.RemoteAddr(), short(id), pathKind(c))
				}
				if err := bridge(ctx, c, lc); err != nil && ctx.Err() == nil && o.verbose > 0 {
					fmt.Fprintf(stderr, "p2pcat: %s\n", failf("stream to "+short(id), err))
				}
			})
		}
	})
}

// forwardTo serves the streams of "p2pcat -l -to ADDR": each is connected
// to the local address ADDR.
func forwardTo(to localAddr, timeoutCtx func(context.Context) (context.Context, context.CancelFunc)) func(context.Context, *p2psock.Conn) error {
	return func(ctx context.Context, c *p2psock.Conn) error {
		dctx, cancel := timeoutCtx(ctx)
		lc, err := (&net.Dialer{}).DialContext(dctx, to.network, to.addr)
		cancel()
		if err != nil {
			c.Reset()
			return failf("connect to "+to.String(), err)
		}
		defer lc.Close()
		return bridge(ctx, c, lc)
	}
}

// execEach serves the streams of "p2pcat -l -exec CMD": each runs CMD (with
// sh -c), the stream as its stdin and stdout; its stderr is p2pcat's.
func execEach(command string, stderr io.Writer) func(context.Context, *p2psock.Conn) error {
	return func(ctx context.Context, c *p2psock.Conn) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Env = append(os.Environ(), "P2PCAT_PEER="+peerOf(c).String())
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		cmd.Stdout = &closeWriter{c}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			c.Reset()
			return failf("run "+command, err)
		}
		go func() {
			_, _ = io.Copy(stdin, c)
			stdin.Close()
		}()
		err = cmd.Wait()
		if cerr := c.CloseWrite(); err == nil {
			err = cerr
		}
		return err
	}
}

// closeWriter hides c's other methods from exec, which then copies the
// command's output to it from a pipe (and the stream ends when pipe does).
type closeWriter struct{ c *p2psock.Conn }

func (w *closeWriter) Write(b []byte) (int, error) { return w.c.Write(b) }

// halfCloser is a connection whose sending side closes on its own: TCP and
// unix connections, and streams.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// bridge copies c to lc and lc to c, passing each direction's end on as a
// half-close, until both directions are done or ctx ends.
func bridge(ctx context.Context, c *p2psock.Conn, lc net.Conn) error {
	errs := make(chan error, 2)
	one := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if hc, ok := dst.(halfCloser); ok {
			// A stream's peer that already stopped it hung up (ssh ends
			// its ProxyCommand so): its end need not be sent.
			if cerr := hc.CloseWrite(); err == nil && !errors.Is(cerr, p2psock.ErrReset) {
				err = cerr
			}
		} else {
			dst.Close()
		}
		errs <- err
	}
	go one(c, lc)
	go one(lc, c)
	stop := context.AfterFunc(ctx, func() {
		c.Close()
		lc.Close()
	})
	defer stop()
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
			// One direction failed: end the other.
			c.Close()
			lc.Close()
		}
	}
	if errors.Is(first, net.ErrClosed) && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
