// Command http serves HTTP on a p2psock node and fetches pages from it by
// the node's ID: no host name, no IP address, no port, no certificate
// authority. A Node is a net.Listener, so the standard library's http.Server
// serves on it unchanged, and a client dials with Connect from an
// http.Transport. The stream's TLS handshake proves both IDs: the server
// knows who is asking (r.RemoteAddr), the client knows who answers.
//
// Usage:
//
//	http serve [-i key]       serve until Ctrl-C; prints the ID to fetch from
//	http get [-i key] <ID>[/path]
//	                          fetch a page, print its status and body
//	http -demo                a server and a client in one process on 127.0.0.1
//
// Nodes find each other on this machine and on the LAN by themselves
// (Config.LocalDiscovery), so "http serve" in one terminal and "http get <ID>"
// in another need no addresses. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/p2psock/p2psock"
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
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" { // else package flag has already explained
			fmt.Fprintln(stderr, "http:", ue.msg)
			fmt.Fprint(stderr, usage)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "http:", err)
		return 1
	}
}

const usage = `usage:
  http serve [-i key]              serve HTTP on a node until Ctrl-C
  http get [-i key] <ID>[/path]    fetch a page from the node with that ID
  http -demo                       run a server and a client in this process
global flags (before the command): -net name, -bootstrap host:port[,...], -listen host:port, -v
`

// usageError is a bad command line: exit status 2. An empty msg means that
// package flag has already printed the problem and the usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return "usage: " + e.msg }

// options are the global flags: how a node joins its network.
type options struct {
	network   string
	bootstrap []string
	listen    string
	logger    *slog.Logger // nil: the node logs nothing
}

// run is the whole program, with its environment passed in so that tests can
// run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = stdin // no input is read; the parameter keeps run's shape uniform

	fs := newFlagSet("http", stderr)
	demo := fs.Bool("demo", false, "run the demo: a server and a client in this process")
	network := fs.String("net", "p2psock-http", "network name: nodes of other networks are ignored")
	bootstrap := fs.String("bootstrap", "", "comma-separated host:port of nodes already in the network (optional: nodes on this machine or LAN are found by themselves)")
	listen := fs.String("listen", "", "UDP host:port to bind (default: every interface, a free port)")
	verbose := fs.Bool("v", false, "log what the node does to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{}
	}
	o := options{network: *network, listen: *listen}
	if *bootstrap != "" {
		o.bootstrap = strings.Split(*bootstrap, ",")
	}
	if *verbose {
		o.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	if *demo {
		if fs.NArg() != 0 {
			return usageError{"-demo takes no arguments"}
		}
		return runDemo(ctx, stdout)
	}
	if fs.NArg() == 0 {
		return usageError{"no command"}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, o, rest, stdout, stderr)
	case "get":
		return cmdGet(ctx, o, rest, stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// cmdServe serves HTTP on a node until ctx ends (Ctrl-C).
func cmdServe(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("http serve", stderr)
	key := fs.String("i", defaultKeyPath("serve.key"), "identity file (created if missing): the server keeps its ID across restarts")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{}
	}
	if fs.NArg() != 0 {
		return usageError{"serve takes no arguments"}
	}
	n, err := startNode(ctx, o, *key)
	if err != nil {
		return err
	}
	defer n.Close()

	fmt.Fprintf(stdout, "serving HTTP on %s (UDP port %d)\n", n.ID(), n.UDPAddr().Port)
	fmt.Fprintf(stdout, "in another terminal: http get %s/\n", n.ID())
	srv := newServer(n.ID(), stderr)
	go func() {
		<-ctx.Done()
		srv.Close() // closes the listener (the node) and every connection
	}()
	err = srv.Serve(n)
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped")
		return nil
	}
	return err
}

// cmdGet fetches one page by the server's ID.
func cmdGet(ctx context.Context, o options, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("http get", stderr)
	key := fs.String("i", defaultKeyPath("client.key"), "identity file (created if missing): the ID the server sees")
	// Allow the flag after the argument too: "get <ID>/ -i key".
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		return usageError{"get: give one <ID>[/path]"}
	}
	url, err := parseTarget(pos[0])
	if err != nil {
		return usageError{err.Error()}
	}

	n, err := startNode(ctx, o, *key)
	if err != nil {
		return err
	}
	defer n.Close()
	client := newClient(n)
	defer client.CloseIdleConnections() // before the node closes
	return fetch(ctx, client, url, stdout)
}

// parseTarget turns "<ID>[/path]" (or "http://<ID>[/path]") into a URL whose
// host is the ID.
func parseTarget(s string) (string, error) {
	s = strings.TrimPrefix(s, "http://")
	host, path, _ := strings.Cut(s, "/")
	if _, err := p2psock.ParseID(host); err != nil {
		return "", fmt.Errorf("%q is not a node ID: %v", host, err)
	}
	return "http://" + host + "/" + path, nil
}

// fetch GETs url and prints the status line and the body. A status of 400
// or more is an error (exit status 1), after the body is printed.
func fetch(ctx context.Context, client *http.Client, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintf(w, "%s %s\n", resp.Proto, resp.Status)
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

// startNode creates a node and binds it.
func startNode(ctx context.Context, o options, keyPath string) (*p2psock.Node, error) {
	id, err := p2psock.LoadOrCreateIdentity(keyPath)
	if err != nil {
		return nil, err
	}
	n, err := p2psock.NewNode(p2psock.Config{
		Identity:   id,
		ListenAddr: o.listen,
		Network:    o.network,
		Bootstrap:  o.bootstrap,
		// Find the other nodes of the network on this machine and the LAN:
		// with no Bootstrap, the first node starts the network and the next
		// ones join it.
		LocalDiscovery: true,
		Logger:         o.logger,
	})
	if err != nil {
		return nil, err
	}
	if err := n.Bind(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// defaultKeyPath is where an identity is kept by default.
func defaultKeyPath(name string) string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "p2psock-http", name)
}

// newFlagSet returns a flag set that reports its errors on stderr and
// returns them rather than exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintf(stderr, "flags of %s:\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// retry calls f until it succeeds, a few times with a growing pause in
// between, each try bounded by its own timeout. A node that has just bound
// may not yet be in every routing table, so a first Connect can fail where
// the next one, a moment later, succeeds.
func retry(ctx context.Context, f func(context.Context) error) error {
	const tries = 4
	pause := 200 * time.Millisecond
	var err error
	for i := range tries {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, p2psock.ErrPeerIdentity) || i == tries-1 {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause *= 2
	}
	return err
}
