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
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err and maps it to the exit status: 0 ok, 1 failure,
// 2 usage.
func exitCode(err error, stderr io.Writer) int {
	return cli.Program{Name: "chat", Usage: usage}.ExitStatus(err, stderr)
}

const usage = `usage: chat -name <nickname> [flags]
       chat -demo
`

// commandTimeout bounds each command the user types.
const commandTimeout = 30 * time.Second

// run runs the chat with the given arguments (without the program name)
// until the user quits, stdin ends or ctx ends.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("chat", usage, stderr)
	var (
		demo        = fs.Bool("demo", false, "run four participants in this process and print their conversation")
		nick        = fs.String("name", "", "your nickname (required unless -demo)")
		idFile      = fs.String("i", "", "identity file, created if absent (default <config dir>/p2psock-chat/<name>.key)")
		listen      = fs.String("listen", "", "UDP host:port to listen on (default every interface, any port)")
		bootstrap   = fs.String("bootstrap", "", "comma-separated host:port of nodes to join through\n(default: find them on this machine and the LAN)")
		network     = fs.String("network", "p2psock-chat", "network name")
		machineOnly = fs.Bool("machine-only", false, "find the other nodes on this machine only, not on the LAN")
		verbose     = fs.Bool("v", false, "log the node's activity to stderr")
	)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *demo {
		return runDemo(ctx, stdout)
	}
	if *nick == "" {
		return cli.Usage("give yourself a nickname with -name")
	}
	if err := checkNick(*nick); err != nil {
		return err
	}

	// The identity file keeps the node's ID from one run to the next.
	id, err := cli.LoadIdentity(*idFile, "p2psock-chat", *nick+".key")
	if err != nil {
		return err
	}
	o := cli.Options{Network: *network, Listen: *listen, MachineOnly: *machineOnly}
	if *bootstrap != "" {
		o.Bootstrap = strings.Split(*bootstrap, ",")
	}
	if *verbose {
		o.Logger = cli.NewLogger(stderr, 1)
	}
	// With no -bootstrap, the node finds the other chat nodes on this
	// machine and on the LAN, and starts a network of its own if there are
	// none yet.
	cfg := o.Config(id)
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
