package main

import (
	"context"
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
