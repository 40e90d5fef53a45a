package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/p2psock"
)

func TestTicketRoundTrip(t *testing.T) {
	id, err := p2psock.NewIdentity()
	require.NoError(t, err)
	in := ticket{id: id.ID(), network: "net", addrs: []string{"203.0.113.5:4000", "[2001:db8::1]:4000"},
		relays: []string{"turn://u:p%20w@203.0.113.5:3478"}}
	out, err := parseTicket(in.String())
	require.NoError(t, err)
	require.Equal(t, in, out)
	for _, bad := range []string{"", "p2pcat1", "p2pcat1!!", in.String()[:20], "x" + in.String()} {
		_, err := parseTicket(bad)
		require.ErrorIs(t, err, errBadTicket, bad)
	}
}

func FuzzParseTicket(f *testing.F) {
	id, err := p2psock.NewIdentityWork(context.Background(), 0) // no work: fuzzing workers start at once
	require.NoError(f, err)
	f.Add(ticket{id: id.ID(), network: "n", addrs: []string{"127.0.0.1:1"}}.String())
	f.Add("p2pcat1")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := parseTicket(s)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(tk.addrs)+len(tk.relays), maxTicketAddrs)
		again, err := parseTicket(tk.String())
		require.NoError(t, err)
		require.Equal(t, tk.id, again.id)
	})
}

func TestSize(t *testing.T) {
	require.Equal(t, "512 B", size(512))
	require.Equal(t, "1.5 KiB", size(1536))
	require.Equal(t, "100.0 MiB", size(100<<20))
	require.Equal(t, "2.00 GiB", size(2<<30))
}

// TestTicketConnectWaitsForItsNodeLoopback: "p2pcat <ticket>" started
// before the ticket's node is in the network (a node that is restarting,
// or one the network's view has not caught up with) is told that no node
// has the ID; it tries again until -timeout rather than fail, and
// connects once the node is there. An ID given as such fails at once.
func TestTicketConnectWaitsForItsNodeLoopback(t *testing.T) {
	e := newEnv(t)
	entry := e.start(t, strings.NewReader(""), "-l")
	et, err := parseTicket(entry.waitLine(`^ticket (\S+)$`)[1])
	require.NoError(t, err)

	// The node the ticket names starts later, as the fourth p2pcat (id4).
	later, err := p2psock.LoadOrCreateIdentity(e.identity(t, "id4"))
	require.NoError(t, err)
	tk := ticket{id: later.ID(), network: et.network, addrs: et.addrs}

	plain := e.start(t, strings.NewReader(""), later.ID().String())
	require.Equal(t, 1, plain.wait())
	require.Contains(t, plain.stderr.String(), "no node in the network has that ID")

	c := e.start(t, strings.NewReader("through the ticket\n"), "-v", tk.String())
	c.waitLine(`no node in the network has that ID, trying again$`)
	l := e.start(t, strings.NewReader(""), append([]string{"-l"}, bootstrapArgs(et.addrs)...)...)
	require.Equal(t, 0, c.wait(), c.stderr.String())
	require.Equal(t, 0, l.wait(), l.stderr.String())
	require.Equal(t, "through the ticket\n", l.stdout.String())
}

// bootstrapArgs turns addresses into -b flags.
func bootstrapArgs(addrs []string) []string {
	var args []string
	for _, a := range addrs {
		args = append(args, "-b", a)
	}
	return args
}
