package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// demoDifficulty is the identity work (p2psock.Config.Difficulty) of the
// demo's own network: 8 bits, about a millisecond an identity, where the
// default (about 0.6 s of a core, against Sybil attacks on an open
// network) would make the demo wait for its participants' identities.
const demoDifficulty = 8

// demoNetwork is the network name of the demo's nodes, so that they never mix
// with nodes of "share serve".
const demoNetwork = "p2psock-share-demo"

// peer is one node of the demo, with its DHT and the files it serves.
type peer struct {
	name string
	n    *p2psock.Node
	d    *dht.DHT
	lib  *library
}

// startLocal starts one node per name on 127.0.0.1, in a network of their
// own: the first starts the network, the others join through it (explicit
// Bootstrap, no local discovery, so nothing else on the machine interferes).
// stop closes them all.
func startLocal(ctx context.Context, names ...string) (peers []*peer, stop func(), err error) {
	stop = func() {
		for _, p := range peers {
			closeNode(p.n, p.d)
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	var entry string
	for _, name := range names {
		cfg := p2psock.Config{ListenAddr: "127.0.0.1:0", Network: demoNetwork, Difficulty: demoDifficulty}
		if entry != "" {
			cfg.Bootstrap, cfg.JoinOnly = []string{entry}, true
		}
		n, d, err := cli.StartNode(ctx, cfg, dht.Config{})
		if err != nil {
			return nil, stop, fmt.Errorf("%s: %w", name, err)
		}
		peers = append(peers, &peer{name: name, n: n, d: d, lib: newLibrary()})
		if entry == "" {
			entry = n.UDPAddr().String()
		}
	}
	return peers, stop, nil
}

// runDemo runs the whole story in one process, in dir: alice and bob share
// the same 8 MiB file, carol another one, and dave finds the first by name,
// sees its two owners, downloads it from one of them and checks its SHA-256.
func runDemo(ctx context.Context, dir string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The files: random bytes, so the SHA-256 check means something.
	shared := filepath.Join(dir, "shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		return err
	}
	big := make([]byte, 8<<20)
	rand.Read(big)
	bigPath := filepath.Join(shared, "demo.bin")
	notesPath := filepath.Join(shared, "notes.txt")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(notesPath, []byte("p2psock: sockets for peer-to-peer networks\n"), 0o644); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "Starting 4 nodes on 127.0.0.1 (network %q)...\n", demoNetwork)
	peers, stop, err := startLocal(ctx, "alice", "bob", "carol", "dave")
	if err != nil {
		return err
	}
	defer stop()
	alice, bob, carol, dave := peers[0], peers[1], peers[2], peers[3]
	names := map[p2psock.ID]string{}
	for _, p := range peers {
		names[p.n.ID()] = p.name
		fmt.Fprintf(stdout, "  %-5s %s at %s\n", p.name, p.n.ID(), p.n.UDPAddr())
	}

	// Owners: hash their files, publish them in the DHT, serve them.
	serveCtx, stopServing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopServing()
		wg.Wait() // before stop() closes the nodes
	}()
	for _, o := range []struct {
		p    *peer
		file string
	}{{alice, bigPath}, {bob, bigPath}, {carol, notesPath}} {
		info, err := o.p.lib.add(o.file)
		if err != nil {
			return err
		}
		if err := publish(ctx, o.p.d, []fileInfo{info}); err != nil {
			return fmt.Errorf("%s: %w", o.p.name, err)
		}
		fmt.Fprintf(stdout, "%s publishes %s (%s) under %q\n", o.p.name, info.Name, formatSize(info.Size), nameKey(info.Name))
		// (The servers' logs would cut through dave's progress bar: drop them.)
		wg.Go(func() { _ = o.p.lib.serve(serveCtx, o.p.n, io.Discard) }) // ends with serveCtx
	}

	// dave searches by name.
	var demoBin []offer // the owners of demo.bin
	for _, name := range []string{"notes.txt", "demo.bin"} {
		fmt.Fprintf(stdout, "dave searches %q:\n", name)
		versions, err := search(ctx, dave.d, name)
		if err != nil {
			return err
		}
		for _, v := range versions {
			var owners []string
			for _, o := range v {
				owners = append(owners, names[o.Owner])
			}
			slices.Sort(owners)
			fmt.Fprintf(stdout, "  %s, sha256 %s…, owners: %s\n", formatSize(v[0].Size), v[0].SHA256[:16], strings.Join(owners, " "))
		}
		if name == "demo.bin" {
			if len(versions) != 1 || len(versions[0]) != 2 {
				return fmt.Errorf("expected one version of demo.bin with 2 owners, found %d versions", len(versions))
			}
			demoBin = versions[0]
		}
	}

	// dave downloads demo.bin from one of its owners.
	out := filepath.Join(dir, "downloads", "demo.bin")
	from, err := download(ctx, dave.n, shuffled(demoBin), out, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dave downloaded demo.bin from %s into %s\n", names[from], out)
	fmt.Fprintf(stdout, "OK: SHA-256 %s verified\n", demoBin[0].SHA256)
	return nil
}
