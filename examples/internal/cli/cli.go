// Package cli is what the example programs' command lines share: exit
// statuses, flag sets that report rather than exit, the global flags that
// say how a node joins its network, identity files, and retrying a first
// request while a fresh node settles in.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// UsageError is a bad command line: exit status 2. An empty Msg means that
// package flag has already printed the problem and the usage.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return "usage: " + e.Msg }

// ExitCode reports err on stderr as program prog and maps it to the exit
// status: 0 ok (or -h), 1 failure, 2 usage (then usage is printed).
func ExitCode(prog, usage string, err error, stderr io.Writer) int {
	var ue UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.Msg != "" { // else package flag has already explained
			fmt.Fprintln(stderr, prog+":", ue.Msg)
			fmt.Fprint(stderr, usage)
		}
		return 2
	default:
		fmt.Fprintln(stderr, prog+":", err)
		return 1
	}
}

// NewFlagSet returns a flag set that reports its errors on stderr, after
// usage, and returns them rather than exiting.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintf(stderr, "flags of %s:\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args with fs: flag.ErrHelp for -h, a UsageError for a bad
// flag (package flag has printed it).
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError{}
	}
	return nil
}

// ParseInterspersed parses flags that may come after positional arguments
// ("get notes.txt -o out"), which package flag alone does not allow, and
// returns the positional arguments.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := Parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// Options are the global flags: how a node joins its network.
type Options struct {
	Network   string
	Bootstrap []string
	Listen    string
	Logger    *slog.Logger // nil: the node logs nothing
}

// GlobalFlags defines -net, -bootstrap, -listen and -v on fs; the function
// it returns gives their values once fs is parsed (-v logs to stderr).
func GlobalFlags(fs *flag.FlagSet, defaultNet string, stderr io.Writer) func() Options {
	network := fs.String("net", defaultNet, "network name: nodes of other networks are ignored")
	bootstrap := fs.String("bootstrap", "", "comma-separated host:port of nodes already in the network (optional: nodes on this machine or LAN are found by themselves)")
	listen := fs.String("listen", "", "UDP host:port to bind (default: every interface, a free port)")
	verbose := fs.Bool("v", false, "log what the node does to stderr")
	return func() Options {
		o := Options{Network: *network, Listen: *listen}
		if *bootstrap != "" {
			o.Bootstrap = strings.Split(*bootstrap, ",")
		}
		if *verbose {
			o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		return o
	}
}

// NewNode creates (not binds) a node with the identity kept in keyPath
// (created if missing), joining as o says.
func (o Options) NewNode(keyPath string) (*p2psock.Node, error) {
	id, err := p2psock.LoadOrCreateIdentity(keyPath)
	if err != nil {
		return nil, err
	}
	return p2psock.NewNode(p2psock.Config{
		Identity:   id,
		ListenAddr: o.Listen,
		Network:    o.Network,
		Bootstrap:  o.Bootstrap,
		// Find the other nodes of the network on this machine and the LAN:
		// with no Bootstrap, the first node starts the network and the next
		// ones join it.
		LocalDiscovery: true,
		Logger:         o.Logger,
	})
}

// KeyPath is where program app keeps an identity by default, so that a
// node keeps its ID across restarts.
func KeyPath(app, name string) string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, app, name)
}

// Retry calls f until it succeeds, a few times with a growing pause in
// between, each try bounded by its own timeout. A node that has just bound
// may not yet be in every routing table, so a first lookup or Connect can
// fail where the next one, a moment later, succeeds.
func Retry(ctx context.Context, f func(context.Context) error) error {
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

// Usage returns a UsageError saying msg.
func Usage(msg string) error { return UsageError{Msg: msg} }
