package main

import (
	"context"
	"fmt"
	"io"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// defaultViewAddr is where "p2pcat view" serves its page when not told.
const defaultViewAddr = "127.0.0.1:0"

// viewCmd is "p2pcat view [host:port]": a node of the network, with a DHT
// like every p2pcat node, that serves its view page and its Prometheus
// metrics on the TCP address (default: a free loopback port) until
// interrupted. It prints the page's address.
func viewCmd(ctx context.Context, o *options, args []string, stderr io.Writer) error {
	addr := defaultViewAddr
	switch len(args) {
	case 0:
	case 1:
		addr = args[0]
	default:
		return cli.Usagef("view takes at most 1 argument (host:port), got %d", len(args))
	}
	id, release, err := identity(o, stderr, true, false)
	if err != nil {
		return err
	}
	defer release()
	cfg := o.nodeOptions(stderr).Config(id)
	cfg.DebugAddr = addr
	bctx, cancel := context.WithTimeout(ctx, o.timeout)
	n, d, err := cli.StartNode(bctx, cfg, dht.Config{})
	cancel()
	if err != nil {
		return err
	}
	defer n.Close()
	defer d.Close()
	return viewNode(ctx, n, stderr)
}

// viewNode prints where n's page is and waits for the interrupt.
func viewNode(ctx context.Context, n *p2psock.Node, stderr io.Writer) error {
	fmt.Fprintf(stderr, "node %s\n", n.ID())
	fmt.Fprintf(stderr, "view: http://%s/  (metrics: http://%s/metrics)\n", n.DebugAddr(), n.DebugAddr())
	<-ctx.Done()
	return nil
}
