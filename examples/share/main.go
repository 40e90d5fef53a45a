// Command share shares files over a p2psock network, with no server: owners
// publish their files in the DHT under their names (several owners may
// publish a file of the same name), anybody can search for a name, and a
// download streams the file from one of its owners over Connect and checks it
// against the SHA-256 the owner signed.
//
// Usage:
//
//	share serve [-i key] <file>...        publish files and serve them until Ctrl-C
//	share search [-i key] <name>          list who shares a file of that name
//	share get [-i key] [-o out] [-sha prefix] <name>
//	                                      download it, verify its SHA-256
//	share -demo                           all of it in one process: 4 nodes on 127.0.0.1
//
// Nodes find each other on this machine and on the LAN by themselves
// (Config.LocalDiscovery), so "share serve notes.txt" in one terminal and
// "share get notes.txt" in another need no addresses. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err and maps it to the exit status: 0 ok, 1 failure,
// 2 usage.
func exitCode(err error, stderr io.Writer) int {
	return cli.Program{Name: "share", Usage: usage}.ExitStatus(err, stderr)
}

const usage = `usage:
  share serve [-i key] <file>...                     publish files and serve them until Ctrl-C
  share search [-i key] <name>                       list who shares a file of that name
  share get [-i key] [-o out] [-sha prefix] <name>   download a file and verify its SHA-256
  share -demo                                        run a 4-node demo in this process
global flags (before the command): -net name, -bootstrap host:port[,...], -listen host:port, -v
`

// run is the whole program, with its environment passed in so that tests can
// run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = stdin // share reads no input; the parameter keeps run's shape uniform

	fs := cli.NewFlagSet("share", usage, stderr)
	demo := fs.Bool("demo", false, "run the demo: 4 nodes in this process, publish, search, download")
	options := cli.GlobalFlags(fs, "p2psock-share", stderr)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	o := options()

	if *demo {
		if fs.NArg() != 0 {
			return cli.Usage("-demo takes no arguments")
		}
		dir, err := os.MkdirTemp("", "p2psock-share-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		return runDemo(ctx, dir, stdout, stderr)
	}
	if fs.NArg() == 0 {
		return cli.Usage("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, o, rest, stdout, stderr)
	case "search":
		return cmdSearch(ctx, o, rest, stdout, stderr)
	case "get":
		return cmdGet(ctx, o, rest, stdout, stderr)
	}
	return cli.Usage(fmt.Sprintf("unknown command %q", cmd))
}

// cmdServe publishes files and serves them until ctx ends (Ctrl-C).
func cmdServe(ctx context.Context, o cli.Options, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("share serve", usage, stderr)
	key := fs.String("i", "", "identity file (created if missing; default <config dir>/p2psock-share/serve.key)")
	files, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return cli.Usage("serve: no file to share")
	}

	// Hash the files first: their SHA-256 is what the DHT records announce.
	lib := newLibrary()
	var infos []fileInfo
	for _, f := range files {
		info, err := lib.add(f)
		if err != nil {
			return err
		}
		infos = append(infos, info)
	}

	n, d, err := startNode(ctx, o, *key, "serve.key")
	if err != nil {
		return err
	}
	defer closeNode(n, d)
	fmt.Fprintf(stdout, "node %s on UDP port %d\n", n.ID(), n.UDPAddr().Port)

	if err := publish(ctx, d, infos); err != nil {
		return err
	}
	for _, info := range infos {
		fmt.Fprintf(stdout, "sharing %s (%s, sha256 %s)\n", info.Name, formatSize(info.Size), info.SHA256)
	}
	fmt.Fprintln(stdout, "serving until Ctrl-C; in another terminal: share get", infos[0].Name)

	// Records live for recordTTL. The DHT stores them again on the current
	// replica set every minute (so they survive replicas leaving), but with
	// their original expiry: to stay listed, the owner adds them again
	// before they expire, which renews the TTL.
	go func() {
		t := time.NewTicker(recordTTL / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := publish(ctx, d, infos); err != nil && ctx.Err() == nil {
					fmt.Fprintln(stderr, "renewing the records:", err)
				}
			}
		}
	}()

	err = lib.serve(ctx, n, stderr)
	// Take our records out of the DHT before leaving, so that nobody keeps
	// trying an owner that is gone. ctx is likely over: use a fresh one.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unpublish(cctx, d, infos)
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped")
		return nil
	}
	return err
}

// cmdSearch lists the owners of the files published under a name.
func cmdSearch(ctx context.Context, o cli.Options, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("share search", usage, stderr)
	key := fs.String("i", "", "identity file (created if missing; default <config dir>/p2psock-share/client.key)")
	names, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return cli.Usage("search: give one file name")
	}

	n, d, err := startNode(ctx, o, *key, "client.key")
	if err != nil {
		return err
	}
	defer closeNode(n, d)
	versions, err := search(ctx, d, names[0])
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("nobody shares %q", names[0])
	}
	printVersions(stdout, versions)
	return nil
}

// cmdGet downloads a file by name from one of its owners.
func cmdGet(ctx context.Context, o cli.Options, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("share get", usage, stderr)
	key := fs.String("i", "", "identity file (created if missing; default <config dir>/p2psock-share/client.key)")
	out := fs.String("o", "", "output file (default: the file's name, in the current directory)")
	sha := fs.String("sha", "", "choose the version whose SHA-256 starts with this (when owners share different files under one name)")
	names, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return cli.Usage("get: give one file name")
	}

	n, d, err := startNode(ctx, o, *key, "client.key")
	if err != nil {
		return err
	}
	defer closeNode(n, d)
	versions, err := search(ctx, d, names[0])
	if err != nil {
		return err
	}
	v, err := choose(versions, names[0], *sha)
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Base(v[0].Name) // never a path from the network
	}
	fmt.Fprintf(stdout, "%s: %s, sha256 %s, %d owner(s)\n", v[0].Name, formatSize(v[0].Size), v[0].SHA256, len(v))
	from, err := download(ctx, n, shuffled(v), path, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %s from %s, SHA-256 verified\n", path, from)
	return nil
}

// startNode creates a node with a DHT and binds it. Its identity is in
// keyFile, or if that is "", in the file name of share's config directory.
func startNode(ctx context.Context, o cli.Options, keyFile, name string) (*p2psock.Node, *dht.DHT, error) {
	id, err := cli.LoadIdentity(keyFile, "p2psock-share", name)
	if err != nil {
		return nil, nil, err
	}
	return cli.StartNode(ctx, o.Config(id), dht.Config{Logger: o.Logger})
}

// closeNode closes a node and its DHT.
func closeNode(n *p2psock.Node, d *dht.DHT) {
	d.Close()
	n.Close()
}
