package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/p2psock"
)

// datagramSend is "p2pcat -u <ID>" and "p2pcat -u @<key>": each line of
// stdin is one acknowledged message to dest, and the messages that arrive
// meanwhile are printed.
func datagramSend(ctx context.Context, o *options, dest string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		id    p2psock.ID
		key   p2psock.Key
		byKey = strings.HasPrefix(dest, "@")
	)
	if byKey {
		if len(dest) == 1 {
			return cli.Usagef("empty key after @")
		}
		key = p2psock.KeyOf([]byte(dest[1:]))
	} else {
		var err error
		if id, err = peerArg(o, dest); err != nil {
			return cli.Usagef("%q is not a node ID (52 base32 characters), a ticket or @key", dest)
		}
	}
	return withNode(ctx, o, stderr, nodeSpec{client: true}, func(n *p2psock.Node, _ *dht.DHT) error {
		// Replies are printed while lines are sent; the printer has ended
		// (and written its last line) when this returns.
		rctx, stop := context.WithCancel(ctx)
		printed := make(chan struct{})
		defer func() {
			stop()
			<-printed
		}()
		go func() {
			defer close(printed)
			_ = printDatagrams(rctx, n, stdout, o.verbose > 0) // ends with rctx
		}()
		return eachLine(ctx, o, stdin, func(sctx context.Context, line []byte) error {
			if !byKey {
				return failf("send to "+short(id), n.SendTo(sctx, line, id))
			}
			// By key, the node that acknowledged is known: if it is this
			// one, nobody else has the message, and it would end with
			// this process.
			_, from, err := n.Overlay().SendService(sctx, wire.ServiceApp, line, key, true)
			if err != nil {
				return failf("send to "+dest, err)
			}
			if from == n.ID() {
				return &failure{msg: "send to " + dest + ": this p2pcat is the node closest to the key, and no other node got the message"}
			}
			return nil
		})
	})
}

// datagramListen is "p2pcat -u -l": it prints every message this node
// receives until interrupted.
func datagramListen(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, nodeSpec{}, func(n *p2psock.Node, _ *dht.DHT) error {
		announce(o, n, stdout, stderr)
		return printDatagrams(ctx, n, stdout, o.verbose > 0)
	})
}

// printDatagrams prints the messages n receives, one per line (verbose:
// with their sender, how they were addressed and their hops), until ctx
// ends or n closes.
func printDatagrams(ctx context.Context, n *p2psock.Node, out io.Writer, verbose bool) error {
	for {
		m, err := n.RecvFrom(ctx)
		if err != nil {
			return err
		}
		if m.From == n.ID() {
			continue // a message of this node's own, to a key it is the closest to
		}
		if verbose {
			how := "to this node"
			if m.ByKey {
				how = "by key " + m.To.String()[:8]
			}
			fmt.Fprintf(out, "%s (%s, %d hops): %s\n", short(m.From), how, m.Hops, m.Data)
			continue
		}
		fmt.Fprintf(out, "%s\n", m.Data)
	}
}
