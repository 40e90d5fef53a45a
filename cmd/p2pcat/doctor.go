package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// doctorWait is how long doctor lets the node's contacts tell it what they
// see, at most (they answer within a round trip; a second contact may
// reveal a symmetric NAT). doctorCheck bounds the filtering test after it.
const (
	doctorWait  = 3 * time.Second
	doctorCheck = 5 * time.Second
)

// doctorReport is doctor's -json output.
type doctorReport struct {
	ID              string   `json:"id"`
	Network         string   `json:"network"`
	Local           string   `json:"local"`
	Public          []string `json:"public"`
	NAT             string   `json:"nat"`
	Mapping         string   `json:"mapping"`
	Filtering       string   `json:"filtering"`
	PortMapping     string   `json:"port_mapping"`
	Relaying        bool     `json:"relaying"`
	RelayedConns    int      `json:"relayed_conns"`
	Contacts        int      `json:"contacts"`
	RelayedContacts int      `json:"relayed_contacts"`
}

// doctor is "p2pcat doctor": it joins the network, lets the node learn what
// its contacts see of it, runs the filtering test, and prints what it knows
// of its NAT and paths, like tailscale netcheck.
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
		check, cancelCheck := context.WithTimeout(ctx, doctorCheck)
		defer cancelCheck()
		if _, err := n.CheckNAT(check); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		inf := n.Info()
		r := doctorReport{ID: inf.ID.String(), Network: inf.Network, Local: inf.LocalAddr.String(), Public: []string{},
			NAT: inf.NAT.Type, Mapping: inf.NAT.Mapping, Filtering: inf.NAT.Filtering, PortMapping: inf.NAT.PortMapping,
			Relaying: inf.NAT.Relaying, RelayedConns: inf.NAT.RelayedConns, Contacts: inf.Contacts, RelayedContacts: inf.Relayed}
		for _, a := range inf.NAT.PublicAddrs {
			r.Public = append(r.Public, a.String())
		}
		if o.jsonOut {
			printJSON(stdout, r)
			return nil
		}
		public := "-"
		if len(r.Public) > 0 {
			public = strings.Join(r.Public, " ")
		}
		yes := map[bool]string{true: "yes", false: "no"}
		fmt.Fprintf(stdout, "id:         %s\n", r.ID)
		fmt.Fprintf(stdout, "network:    %s\n", r.Network)
		fmt.Fprintf(stdout, "local:      %s\n", r.Local)
		fmt.Fprintf(stdout, "public:     %s\n", public)
		fmt.Fprintf(stdout, "nat:        %s\n", describeNAT(r.NAT))
		fmt.Fprintf(stdout, "mapping:    %s\n", r.Mapping)
		fmt.Fprintf(stdout, "filtering:  %s\n", r.Filtering)
		fmt.Fprintf(stdout, "port map:   %s\n", r.PortMapping)
		fmt.Fprintf(stdout, "relaying:   %s (for others; %d connections now)\n", yes[r.Relaying], r.RelayedConns)
		fmt.Fprintf(stdout, "contacts:   %d (%d through a relay node)\n", r.Contacts, r.RelayedContacts)
		return nil
	})
}

// describeNAT says in words what a NAT type means for connections.
func describeNAT(typ string) string {
	switch typ {
	case p2psock.NATOpen:
		return "open: directly reachable"
	case p2psock.NATFirewalled:
		return "firewalled: a public address, but only the peers it contacts reach it"
	case p2psock.NATFullCone:
		return "full cone: anyone reaches it at its public address once it has sent"
	case p2psock.NATRestricted:
		return "restricted cone: the hosts it contacts reach it; direct connections by hole punching"
	case p2psock.NATPortRestricted:
		return "port-restricted cone: direct connections by hole punching, except from symmetric NATs"
	case p2psock.NATCone:
		return "cone (endpoint-independent mapping): direct connections by hole punching"
	case p2psock.NATSymmetric:
		return "symmetric (endpoint-dependent mapping): peers behind strict NATs are reached through a relay"
	}
	return "unknown: no contact answered"
}
