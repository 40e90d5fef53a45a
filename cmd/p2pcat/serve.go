package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// serveCmd is "p2pcat serve": a public node (an entry point, a STUN server and
// a TURN relay) until interrupted. It prints the addresses to bootstrap
// from.
func serveCmd(ctx context.Context, o *options, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if err := noArgs("serve", args); err != nil {
		return err
	}
	if o.port < 0 {
		o.port = 4000
	}
	relay := net.JoinHostPort(o.host, strconv.Itoa(o.relayPort))
	return withNode(ctx, o, stderr, nodeSpec{relayAddr: relay}, func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stdout, "serving as %s\n", n.ID())
		port := n.UDPAddr().Port
		for _, ip := range hostIPs(o.host) {
			fmt.Fprintf(stdout, "entry point: %s  (p2pcat -b %s ...)\n",
				net.JoinHostPort(ip, strconv.Itoa(port)), net.JoinHostPort(ip, strconv.Itoa(port)))
		}
		fmt.Fprintf(stdout, "TURN relay on UDP port %d; STUN on UDP port %d\n", o.relayPort, port)
		<-ctx.Done()
		return ctx.Err()
	})
}

// hostIPs lists the addresses others may reach this host at: host if given,
// otherwise every up, non-loopback interface address (loopback if none).
func hostIPs(host string) []string {
	if host != "" {
		return []string{host}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}
