package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// doctorWait is how long doctor lets the node's contacts tell it what they
// see, at most (they answer within a round trip; a second contact may
// reveal a symmetric NAT).
const doctorWait = 3 * time.Second

// doctor is "p2pcat doctor": it joins the network, lets the node learn what
// its contacts see of it, and prints what it knows of its NAT and paths,
// like tailscale netcheck.
func doctor(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, nodeSpec{}, func(n *p2psock.Node, _ *dht.DHT) error {
		wait, cancel := context.WithTimeout(ctx, doctorWait)
		defer cancel()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		// Until at least two contacts have answered, or the wait is over.
	loop:
		for {
			if inf := n.Info(); inf.PublicAddr != nil && inf.Contacts >= 2 {
				break
			}
			select {
			case <-tick.C:
			case <-wait.Done():
				break loop
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		inf := n.Info()
		public := "-"
		if inf.PublicAddr != nil {
			public = inf.PublicAddr.String()
		}
		yes := map[bool]string{true: "yes", false: "no"}
		fmt.Fprintf(stdout, "id:         %s\n", inf.ID)
		fmt.Fprintf(stdout, "network:    %s\n", inf.Network)
		fmt.Fprintf(stdout, "local:      %s\n", inf.LocalAddr)
		fmt.Fprintf(stdout, "public:     %s\n", public)
		fmt.Fprintf(stdout, "nat:        %s\n", describeNAT(inf.NAT.Mapping))
		fmt.Fprintf(stdout, "mapping:    %s\n", inf.NAT.Mapping)
		fmt.Fprintf(stdout, "port map:   %s\n", inf.NAT.PortMapping)
		fmt.Fprintf(stdout, "relaying:   %s (for others; %d connections now)\n", yes[inf.NAT.Relaying], inf.NAT.RelayedConns)
		fmt.Fprintf(stdout, "contacts:   %d (%d through a relay node)\n", inf.Contacts, inf.Relayed)
		return nil
	})
}

// describeNAT says in words what a mapping behaviour means for connections.
func describeNAT(mapping string) string {
	switch mapping {
	case p2psock.MappingNone:
		return "none: directly reachable"
	case p2psock.MappingIndependent:
		return "cone (endpoint-independent mapping): direct connections by hole punching"
	case p2psock.MappingDependent:
		return "symmetric (endpoint-dependent mapping): peers behind strict NATs are reached through a relay"
	}
	return "unknown: no contact answered"
}
