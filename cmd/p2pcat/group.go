package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// groupMode is "p2pcat -g <group> [-any]": it joins the group, multicasts
// each line of stdin and prints what the other members send; with -any it
// anycasts each line instead, without joining.
func groupMode(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, nodeSpec{}, func(n *p2psock.Node, _ *dht.DHT) error {
		if o.anycast {
			return anycast(ctx, o, n, stdin)
		}
		jctx, cancel := context.WithTimeout(ctx, o.timeout)
		g, err := n.Join(jctx, o.group)
		cancel()
		if err != nil {
			return failf("join "+o.group, err)
		}
		defer g.Close()
		fmt.Fprintf(stderr, "joined %s as %s\n", o.group, n.ID())
		rctx, stop := context.WithCancel(ctx)
		recvDone := make(chan error, 1)
		recvExited := make(chan struct{})
		defer func() {
			stop()
			<-recvExited
		}()
		go func() {
			defer close(recvExited)
			for {
				m, err := g.Recv(rctx)
				if err != nil {
					recvDone <- err
					return
				}
				if m.From == n.ID() && !m.Anycast {
					continue // this node's own multicast coming back
				}
				fmt.Fprintf(stdout, "%s: %s\n", short(m.From), m.Data)
			}
		}()
		err = eachLine(ctx, o, stdin, func(sctx context.Context, line []byte) error {
			if err := g.Send(sctx, line); err != nil {
				return failf("send to "+o.group, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// End of input: keep printing until interrupted, or for -q.
		if o.quit >= 0 {
			t := time.NewTimer(o.quit)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case err := <-recvDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case err := <-recvDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// anycast hands each line to one member of the group, without joining it.
func anycast(ctx context.Context, o *options, n *p2psock.Node, stdin io.Reader) error {
	g := n.Group(o.group)
	return eachLine(ctx, o, stdin, func(sctx context.Context, line []byte) error {
		if err := g.SendAny(sctx, line); err != nil {
			return failf("anycast to "+o.group, err)
		}
		return nil
	})
}
