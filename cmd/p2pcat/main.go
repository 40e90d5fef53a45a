// Command p2pcat is netcat for p2psock networks: streams, datagrams, groups
// and the DHT, with peer IDs instead of host names. Run p2pcat -h for the
// manual.
package main

import (
	"os"
	"time"

	"github.com/p2psock/p2psock/internal/cli"
)

// stopGrace is how long p2pcat has, after SIGINT, SIGTERM or SIGHUP, to
// half-close its streams and leave the network before it exits regardless.
// It covers the node's own bounds on that (its goodbyes wait 0.5 s at most
// and its lingering streams 1 s): cut shorter on a loaded machine, a peer
// learned of the exit only at QUIC's idle timeout (30 s).
const stopGrace = 2 * time.Second

func main() {
	ctx, stop := cli.NotifyContext(stopGrace)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}
