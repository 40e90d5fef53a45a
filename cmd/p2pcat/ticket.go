package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// A ticket is everything another p2pcat needs to reach a node, in one
// string to paste: its ID, its network's name, addresses it can be joined
// through (the node's own public and local addresses, and its entry
// points) and the relays it uses. p2pcat -l prints one; every command that
// takes an ID takes a ticket too, and then joins through the ticket's
// addresses, so that two machines with no entry point of their own and no
// LAN in common meet.
type ticket struct {
	id      p2psock.ID
	network string
	addrs   []string // host:port, tried as entry points
	relays  []string // turn://user:password@host:port
}

// ticketPrefix starts every ticket (and says its version).
const ticketPrefix = "p2pcat1"

// Bounds on what a ticket may hold, so that a pasted string of any size
// cannot make p2pcat try a million entry points.
const (
	maxTicketLen   = 2048
	maxTicketAddrs = 16
)

var errBadTicket = errors.New("p2pcat: bad ticket")

// String encodes t: the prefix, then base64url of its fields, one a line.
func (t ticket) String() string {
	raw := strings.Join([]string{t.id.String(), t.network, strings.Join(t.addrs, ","), strings.Join(t.relays, " ")}, "\n")
	return ticketPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseTicket decodes a ticket String made.
func parseTicket(s string) (ticket, error) {
	body, ok := strings.CutPrefix(s, ticketPrefix)
	if !ok || len(s) > maxTicketLen {
		return ticket{}, errBadTicket
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return ticket{}, errBadTicket
	}
	f := strings.Split(string(raw), "\n")
	if len(f) != 4 {
		return ticket{}, errBadTicket
	}
	var t ticket
	if t.id, err = p2psock.ParseID(f[0]); err != nil {
		return ticket{}, errBadTicket
	}
	t.network = f[1]
	if f[2] != "" {
		t.addrs = strings.Split(f[2], ",")
	}
	if f[3] != "" {
		t.relays = strings.Split(f[3], " ")
	}
	if len(t.addrs)+len(t.relays) > maxTicketAddrs {
		return ticket{}, errBadTicket
	}
	for _, a := range t.addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return ticket{}, errBadTicket
		}
	}
	for _, r := range t.relays {
		if !strings.HasPrefix(r, "turn:") {
			return ticket{}, errBadTicket
		}
	}
	return t, nil
}

// nodeTicket is the ticket of the running node n.
func nodeTicket(o *options, n *p2psock.Node) ticket {
	info := n.Info()
	t := ticket{id: n.ID(), network: info.Network, relays: o.relays}
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] && len(t.addrs) < maxTicketAddrs-len(t.relays) {
			seen[a] = true
			t.addrs = append(t.addrs, a)
		}
	}
	if info.PublicAddr != nil {
		add(info.PublicAddr.String())
	}
	local := n.UDPAddr()
	if local.IP.IsUnspecified() {
		for _, ip := range hostIPs("") {
			add(net.JoinHostPort(ip, strconv.Itoa(local.Port)))
		}
	} else {
		add(local.String())
	}
	for _, b := range o.bootstrap {
		add(b)
	}
	return t
}

// peerArg reads a peer argument, an ID or a ticket. A ticket's addresses
// become entry points (unless -b gave some), and its network and relays
// apply unless -n and -relay were given.
func peerArg(o *options, s string) (p2psock.ID, error) {
	if !strings.HasPrefix(s, ticketPrefix) {
		return p2psock.ParseID(s)
	}
	t, err := parseTicket(s)
	if err != nil {
		return p2psock.ID{}, err
	}
	if len(o.bootstrap) == 0 {
		o.bootstrap = t.addrs
	}
	if o.network == "" {
		o.network = t.network
	}
	if len(o.relays) == 0 {
		o.relays = t.relays
	}
	o.ticket = true
	return t.id, nil
}

// ticketRetry is how long connectPeer waits before it tries a ticket's node
// again.
const ticketRetry = time.Second

// connectPeer opens a stream to id, within -timeout. A ticket's node was
// in the network when it printed the ticket, and this node joined a moment
// ago through the ticket's addresses, so its view of the network is young:
// when the network answers that no node has the ID (a node on the way
// refused the message and this node's own lookup did not reach the ID),
// connectPeer tries again every ticketRetry until -timeout, and then
// reports that answer. An ID given as such is not retried: it may be a
// typo.
func connectPeer(ctx context.Context, o *options, n *p2psock.Node, id p2psock.ID, stderr io.Writer) (*p2psock.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for {
		c, err := n.Connect(ctx, id)
		if err == nil || !o.ticket || !errors.Is(err, p2psock.ErrUnreachable) || ctx.Err() != nil {
			return c, err
		}
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: %s, trying again\n", failf("connect to "+short(id), err))
		}
		t := time.NewTimer(ticketRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}
