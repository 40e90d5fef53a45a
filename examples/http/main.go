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
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
	return cli.Program{Name: "http", Usage: usage}.ExitStatus(err, stderr)
}

const usage = `usage:
  http serve [-i key]              serve HTTP on a node until Ctrl-C
  http get [-i key] <ID>[/path]    fetch a page from the node with that ID
  http -demo                       run a server and a client in this process
global flags (before the command): -net name, -bootstrap host:port[,...], -listen host:port, -v
`

// run is the whole program, with its environment passed in so that tests can
// run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = stdin // no input is read; the parameter keeps run's shape uniform

	fs := cli.NewFlagSet("http", usage, stderr)
	demo := fs.Bool("demo", false, "run the demo: a server and a client in this process")
	options := cli.GlobalFlags(fs, "p2psock-http", stderr)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	o := options()

	if *demo {
		if fs.NArg() != 0 {
			return cli.Usage("-demo takes no arguments")
		}
		return runDemo(ctx, stdout)
	}
	if fs.NArg() == 0 {
		return cli.Usage("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, o, rest, stdout, stderr)
	case "get":
		return cmdGet(ctx, o, rest, stdout, stderr)
	}
	return cli.Usage(fmt.Sprintf("unknown command %q", cmd))
}

// cmdServe serves HTTP on a node until ctx ends (Ctrl-C).
func cmdServe(ctx context.Context, o cli.Options, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("http serve", usage, stderr)
	key := fs.String("i", "", "identity file (created if missing; default <config dir>/p2psock-http/serve.key): the server keeps its ID across restarts")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usage("serve takes no arguments")
	}
	n, err := startNode(ctx, o, *key, "serve.key")
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
func cmdGet(ctx context.Context, o cli.Options, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("http get", usage, stderr)
	key := fs.String("i", "", "identity file (created if missing; default <config dir>/p2psock-http/client.key): the ID the server sees")
	// Allow the flag after the argument too: "get <ID>/ -i key".
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usage("get: give one <ID>[/path]")
	}
	url, err := parseTarget(pos[0])
	if err != nil {
		return cli.Usage(err.Error())
	}

	n, err := startNode(ctx, o, *key, "client.key")
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
		return "", fmt.Errorf("%q is not a node ID: %w", host, err)
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

// startNode creates a node and binds it. Its identity is in keyFile, or if
// that is "", in the file name of http's config directory.
func startNode(ctx context.Context, o cli.Options, keyFile, name string) (*p2psock.Node, error) {
	id, err := cli.LoadIdentity(keyFile, "p2psock-http", name)
	if err != nil {
		return nil, err
	}
	n, err := p2psock.NewNode(o.Config(id))
	if err != nil {
		return nil, err
	}
	if err := n.Bind(ctx); err != nil {
		n.Close()
		return nil, fmt.Errorf("joining the network: %w", err)
	}
	return n, nil
}
