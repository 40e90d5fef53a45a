package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// identity loads (or creates) the identity file and, if lock is set, locks
// it, so that a second p2pcat on the machine does not run with the same ID:
// if the file is locked, it gets a fresh identity instead. release unlocks.
func identity(o *options, stderr io.Writer, lock bool) (*p2psock.Identity, func(), error) {
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
// flags: -n, -b, -s and -p, -v.
func (o *options) nodeOptions(stderr io.Writer) cli.Options {
	no := cli.Options{
		Network:     o.network,
		Bootstrap:   o.bootstrap,
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

// withNode starts and binds this process's node, with a DHT attached (every
// p2pcat node stores records for the network, whatever its mode), runs f
// with them, and closes them afterwards. relayAddr is the node's TURN relay
// address ("" for none).
func withNode(ctx context.Context, o *options, stderr io.Writer, relayAddr string, f func(*p2psock.Node, *dht.DHT) error) error {
	id, release, err := identity(o, stderr, true)
	if err != nil {
		return err
	}
	defer release()
	cfg := o.nodeOptions(stderr).Config(id)
	cfg.RelayAddr = relayAddr
	bctx, cancel := context.WithTimeout(ctx, o.timeout)
	n, d, err := cli.StartNode(bctx, cfg, dht.Config{})
	cancel()
	if err != nil {
		return err
	}
	defer n.Close()
	defer d.Close()
	return f(n, d)
}

// short is how p2pcat shows a peer's ID where the whole is too long: its
// first 8 characters.
func short(id p2psock.ID) string { return id.String()[:8] }
