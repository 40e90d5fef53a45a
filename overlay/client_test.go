package overlay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAttachedClientsBounded: a full node keeps at most Config.Clients light
// clients, at most Config.ClientsPerSubnet of one subnet; the others are
// refused and counted, a client already attached keeps its place, and a
// client is never put in the routing table (one that was a contact leaves
// it).
func TestAttachedClientsBounded(t *testing.T) {
	n := newFakeNet()
	o, err := New(Config{Identity: testKey(1), Network: fuzzNetwork, Difficulty: -1, Clients: 3, ClientsPerSubnet: 2},
		&fakeTransport{n: n, local: netip.MustParseAddrPort("127.0.0.1:1")})
	require.NoError(t, err)
	defer o.Close()
	at := func(s string) path { return path{addr: netip.MustParseAddrPort(s)} }
	attach := func(seed byte, p path) ID {
		id := pubID(testKey(seed))
		o.mu.Lock()
		o.attachLocked(id, p, time.Millisecond)
		o.mu.Unlock()
		return id
	}
	// A contact that turns out to be a client leaves the table.
	c := pubID(testKey(9))
	o.mu.Lock()
	o.upsertLocked(c, at("198.51.100.9:9"), true, time.Millisecond)
	o.mu.Unlock()
	require.Contains(t, o.Contacts(), c)
	attach(9, at("198.51.100.9:9"))
	require.NotContains(t, o.Contacts(), c)
	require.True(t, o.AttachedClient(c))

	a := attach(2, at("203.0.113.1:1"))
	b := attach(3, at("203.0.113.2:1"))
	third := attach(4, at("203.0.113.3:1")) // a third of 203.0.113.0/24
	require.True(t, o.AttachedClient(a))
	require.True(t, o.AttachedClient(b))
	require.False(t, o.AttachedClient(third), "a third client of one subnet")
	full := attach(5, at("192.0.2.1:1")) // the table holds 3 already
	require.False(t, o.AttachedClient(full), "a client past Config.Clients")
	require.EqualValues(t, 2, o.Info().Counters.RefusedClients)
	require.Equal(t, 3, o.Info().Clients)
	attach(2, at("203.0.113.1:1")) // heard again: keeps its place
	require.True(t, o.AttachedClient(a))
	require.Empty(t, o.Contacts())

	o.mu.Lock()
	o.expireClientsLocked(time.Now().Add(o.pathsTTL() + time.Second))
	o.mu.Unlock()
	require.Zero(t, o.Info().Clients, "clients not heard for 3·KeepAlive are forgotten")
}
