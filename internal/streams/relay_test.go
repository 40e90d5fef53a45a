package streams

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/lifecycle"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/nat"
)

func TestParseRelayURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want nat.TURNServer
	}{
		{"turn://alice:secret@198.51.100.7:3479", nat.TURNServer{Addr: "198.51.100.7:3479", Username: "alice", Password: "secret"}},
		{"turn:alice:secret@198.51.100.7:3479", nat.TURNServer{Addr: "198.51.100.7:3479", Username: "alice", Password: "secret"}},
		{"turn://relay.example", nat.TURNServer{Addr: "relay.example:3478"}},
		{"turn://bob@[2001:db8::1]:4000", nat.TURNServer{Addr: "[2001:db8::1]:4000", Username: "bob"}},
		{"turn://us%40er:p%3Ass%2Fw@h:5", nat.TURNServer{Addr: "h:5", Username: "us@er", Password: "p:ss/w"}},
		{"//u:p@h:6", nat.TURNServer{Addr: "h:6", Username: "u", Password: "p"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRelayURL(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", "turn://", "stun://h:3478", "http://u:p@h:1", "turn://u:p@", "%zz"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := ParseRelayURL(bad)
			require.ErrorContains(t, err, "p2psock: bad relay")
		})
	}
}

// TestRelayOffersSingleFlight: callers that need the relays contacts offer
// while none are held share one ask; a caller whose context ends first
// returns at once with none, without cutting the ask short; the result is
// kept until it expires, and then asked for again; once the engine's scope
// stops, nobody waits.
func TestRelayOffersSingleFlight(t *testing.T) {
	scope := lifecycle.NewScope()
	defer scope.Close()
	var asks atomic.Int32
	release := make(chan struct{})
	offer := []nat.TURNServer{{Addr: "192.0.2.1:3478", Username: "u", Password: "p"}}
	r := &relayOffers{spawn: scope.Go, ask: func(ctx context.Context) []nat.TURNServer {
		asks.Add(1)
		select {
		case <-release:
			return offer
		case <-ctx.Done():
			return nil
		}
	}}

	// A caller that gives up: it does not wait for the ask.
	short, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan []nat.TURNServer)
	go func() { gaveUp <- r.get(short) }()
	// Others wait for the ask in flight.
	const waiters = 8
	got := make(chan []nat.TURNServer, waiters)
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() { got <- r.get(context.Background()) })
	}
	cancel()
	require.Nil(t, <-gaveUp, "a caller whose context ended got offers")
	select {
	case g := <-got:
		t.Fatalf("a caller returned %v before the ask ended", g)
	default:
	}
	close(release)
	for range waiters {
		require.Equal(t, offer, <-got)
	}
	wg.Wait()
	require.EqualValues(t, 1, asks.Load(), "one ask for every caller")

	require.Equal(t, offer, r.get(context.Background()), "kept while unexpired")
	require.EqualValues(t, 1, asks.Load())
	r.mu.Lock()
	r.expires = time.Now().Add(-time.Second)
	r.mu.Unlock()
	require.Equal(t, offer, r.get(context.Background()), "asked again once expired")
	require.EqualValues(t, 2, asks.Load())

	r.mu.Lock()
	r.expires = time.Time{}
	r.mu.Unlock()
	scope.Stop()
	require.Nil(t, r.get(context.Background()), "no ask once the scope stopped")
	require.EqualValues(t, 2, asks.Load())
}

// TestRelayOffersSingleFlightEmpty: an ask that found no relay is kept for
// relayAskAgain only.
func TestRelayOffersSingleFlightEmpty(t *testing.T) {
	scope := lifecycle.NewScope()
	defer scope.Close()
	r := &relayOffers{spawn: scope.Go, ask: func(context.Context) []nat.TURNServer { return nil }}
	require.Empty(t, r.get(context.Background()))
	r.mu.Lock()
	left := time.Until(r.expires)
	r.mu.Unlock()
	require.LessOrEqual(t, left, relayAskAgain)
	require.Greater(t, left, time.Duration(0))
}

// TestLoopbackRelayOffersFromContacts: a node asks its contacts for relays
// and gets the one a contact runs, at the contact's overlay IP and its relay
// port, with credentials; concurrent callers all get it; a node whose
// contacts run no relay gets none.
func TestLoopbackRelayOffersFromContacts(t *testing.T) {
	relayHost, _, _ := net.SplitHostPort(testnet.LoopbackAddr(0)) // node 0's own address
	nodes := newNet(t, 2, func(i int, c *Config) {
		if i == 0 {
			c.RelayAddr = net.JoinHostPort(relayHost, "0")
		}
	})
	relay, asker := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	results := make(chan []nat.TURNServer, 4)
	for range 4 {
		go func() { results <- asker.eng.turnServers(ctx) }()
	}
	for range 4 {
		got := <-results
		require.Len(t, got, 1)
		host, port, err := net.SplitHostPort(got[0].Addr)
		require.NoError(t, err)
		require.Equal(t, relayHost, host)
		require.Equal(t, strconv.Itoa(relay.eng.relay.Port()), port)
		require.NotEmpty(t, got[0].Username)
		require.NotEmpty(t, got[0].Password)
	}
	require.Empty(t, relay.eng.turnServers(ctx), "the asker runs no relay")
}
