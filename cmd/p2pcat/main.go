// Command p2pcat is netcat for p2psock networks: streams, datagrams, groups
// and the DHT, with peer IDs instead of host names. Run p2pcat -h for the
// manual.
package main

import (
	"os"
	"time"

	"github.com/p2psock/p2psock/internal/cli"
)

// stopGrace is how long p2pcat has, after SIGINT or SIGTERM, to half-close
// its streams and leave the network before it exits regardless.
const stopGrace = 700 * time.Millisecond

func main() {
	ctx, stop := cli.NotifyContext(stopGrace)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}
