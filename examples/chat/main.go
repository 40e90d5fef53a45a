// Command chat is a conference chat with no server. Someone creates a
// conference (a name, a topic, a start time, the people invited) and sends
// the invitations; each invitee accepts or declines; those who accept join
// the conference and talk; whoever joins late sees who is there.
//
// Every participant is a p2psock node. Invitations and answers are messages
// sent by ID (Node.SendTo); a conference is a group (Node.Join) whose
// multicasts carry what is said; who is there is kept in the DHT (package
// dht), where each member announces itself. Group trees and DHT records are
// spread over the nodes and repaired when nodes come and go, so no node, not
// even the organiser's, is needed for the conference to go on.
//
//	go run ./examples/chat -demo         # four participants in one process
//	go run ./examples/chat -name alice   # in one terminal
//	go run ./examples/chat -name bob     # in another: they find each other
//
// See README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: the usage is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// commandTimeout bounds each command the user types.
const commandTimeout = 30 * time.Second

// run runs the chat with the given arguments (without the program name)
// until the user quits, stdin ends or ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		demo      = fs.Bool("demo", false, "run four participants in this process and print their conversation")
		nick      = fs.String("name", "", "your nickname (required unless -demo)")
		idFile    = fs.String("i", "", "identity file, created if absent (default <config dir>/p2psock-chat/<name>.key)")
		listen    = fs.String("listen", "", "UDP host:port to listen on (default every interface, any port)")
		bootstrap = fs.String("bootstrap", "", "comma-separated host:port of nodes to join through\n(default: find them on this machine and the LAN)")
		network   = fs.String("network", "p2psock-chat", "network name")
		verbose   = fs.Bool("v", false, "log the node's activity to stderr")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chat -name <nickname> [flags]\n       chat -demo\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *demo {
		return runDemo(ctx, stdout)
	}
	if *nick == "" {
		fs.Usage()
		return errors.New("give yourself a nickname with -name")
	}
	if err := checkNick(*nick); err != nil {
		return err
	}

	// The identity file keeps the node's ID from one run to the next.
	path := *idFile
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("%w; give an identity file with -i", err)
		}
		path = filepath.Join(dir, "p2psock-chat", *nick+".key")
	}
	id, err := p2psock.LoadOrCreateIdentity(path)
	if err != nil {
		return err
	}
	cfg := p2psock.Config{
		Identity:   id,
		ListenAddr: *listen,
		Network:    *network,
		// Find the other chat nodes on this machine and on the LAN, and start
		// a network of our own if there are none yet.
		LocalDiscovery: true,
	}
	if *bootstrap != "" {
		cfg.Bootstrap = strings.Split(*bootstrap, ",")
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	bctx, cancel := context.WithTimeout(ctx, commandTimeout)
	p, err := Start(bctx, Config{Nick: *nick, Node: cfg})
	cancel()
	if err != nil {
		return err
	}

	var mu sync.Mutex // one line at a time on stdout
	t := &terminal{p: p, print: func(line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(stdout, line)
	}}
	t.printf("* you are %s, ID %s (network %q, UDP %v); /help lists the commands", p.Nick(), p.ID(), *network, p.Node().UDPAddr())
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		for e := range p.Events() {
			t.show(e)
		}
	}()
	defer func() {
		p.Close() // leaves the conference, and ends Events
		<-shown
	}()

	// Read stdin in a goroutine of its own, so that an interrupt ends the
	// loop below even while a read is blocked. (The goroutine then stays
	// blocked in Read until the process exits.)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case line, ok = <-lines:
			if !ok {
				return nil // end of input
			}
		}
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		err := t.execute(cctx, line)
		cancel()
		if errors.Is(err, errQuit) {
			return nil
		}
		if err != nil {
			t.printf("! %v", err)
		}
	}
}
