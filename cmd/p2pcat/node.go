package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// identity loads (or creates) the identity file and, if lock is set, locks
// it, so that a second p2pcat on the machine does not run with the same ID:
// if the file is locked, it gets a fresh identity instead, unless own is set
// (the command needs this identity: dht add and rm act on its values), which
// makes it fail. release unlocks.
func identity(o *options, stderr io.Writer, lock, own bool) (*p2psock.Identity, func(), error) {
	path, err := cli.IdentityFile(o.identity, "p2pcat", "identity")
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	release := func() {}
	if lock {
		f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if own {
				return nil, nil, &failure{msg: path + " is in use by another p2pcat, and this command needs that identity (stop it, or give -i)", err: err}
			}
			id, err := p2psock.NewIdentity()
			if o.verbose > 0 && err == nil {
				fmt.Fprintf(stderr, "p2pcat: %s is in use by another p2pcat; using a fresh identity\n", path)
			}
			return id, release, err
		}
		release = func() { f.Close() }
	}
	id, err := p2psock.LoadOrCreateIdentity(path)
	if err != nil {
		release()
		return nil, nil, err
	}
	return id, release, nil
}

// nodeOptions says how this process's node joins the network, from the
// flags: -n, -b, -s and -p, -relay, -force-relay, -no-lan, -v. With -b the
// node only joins: if no entry point answers, starting it fails.
func (o *options) nodeOptions(stderr io.Writer) cli.Options {
	no := cli.Options{
		Network:     o.network,
		Bootstrap:   o.bootstrap,
		JoinOnly:    len(o.bootstrap) > 0, // a dead entry point is an error, not a new network
		Relays:      o.relays,
		ForceRelay:  o.forceRelay,
		MachineOnly: o.machineOnly,
		Logger:      cli.NewLogger(stderr, int(o.verbose)),
	}
	if o.port >= 0 {
		no.Listen = net.JoinHostPort(o.host, strconv.Itoa(o.port))
	} else if o.host != "" {
		no.Listen = net.JoinHostPort(o.host, "0")
	}
	return no
}

// nodeSpec says what a mode needs of its node.
type nodeSpec struct {
	// relayAddr is the node's TURN relay address ("" for none).
	relayAddr string
	// streams means the mode accepts streams itself; otherwise the node
	// refuses (resets) every stream a peer opens, so that its sender fails
	// at once instead of waiting for an Accept that never comes.
	streams bool
	// ownID means the mode needs the identity file's identity (identity).
	ownID bool
	// client means a one-shot command: the node joins as a light client
	// (p2psock.Config.Client), unless -full.
	client bool
}

// withNode starts and binds this process's node, with a DHT attached (every
// p2pcat node but a light client stores records for the network), runs f
// with them, and closes them afterwards (the node leaves the network).
func withNode(ctx context.Context, o *options, stderr io.Writer, spec nodeSpec, f func(*p2psock.Node, *dht.DHT) error) error {
	id, release, err := identity(o, stderr, true, spec.ownID)
	if err != nil {
		return err
	}
	defer release()
	cfg := o.nodeOptions(stderr).Config(id)
	cfg.RelayAddr = spec.relayAddr
	cfg.Client = spec.client && !o.full
	cfg.DebugAddr = o.view
	bctx, cancel := context.WithTimeout(ctx, o.timeout)
	n, d, err := cli.StartNode(bctx, cfg, dht.Config{})
	if err != nil && cfg.Client && len(o.bootstrap) == 0 && errors.Is(err, p2psock.ErrNoEntryPoint) {
		// No node around to be a client of: a full node, which starts
		// the network, as without client mode.
		cfg.Client = false
		n, d, err = cli.StartNode(bctx, cfg, dht.Config{})
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(o.bootstrap) > 0 {
			return failf("joining the network through -b "+strings.Join(o.bootstrap, ","), err)
		}
		return failf("joining the network", err)
	}
	defer n.Close()
	defer d.Close()
	if a := n.DebugAddr(); a != nil {
		fmt.Fprintf(stderr, "view: http://%s/  (metrics: http://%s/metrics)\n", a, a)
	}
	if !spec.streams {
		stop := refuseStreams(ctx, n)
		defer stop()
	}
	return f(n, d)
}

// refuseStreams resets every stream peers open to n until stop is called;
// stop returns once it has stopped.
func refuseStreams(ctx context.Context, n *p2psock.Node) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := n.AcceptContext(ctx)
			if err != nil {
				return
			}
			c.Reset()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// short is how p2pcat shows a peer's ID where the whole is too long: its
// first 8 characters.
func short(id p2psock.ID) string { return id.String()[:8] }
