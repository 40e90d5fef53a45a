package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// rebindingConn is a node's UDP socket behind a NAT that can lose its
// mapping: rebind moves it to a new port of the same address, as a NAT
// does when its state for the old mapping expired or was flushed. Packets
// to the old port find no socket there. It runs on real loopback sockets.
type rebindingConn struct {
	mu       sync.Mutex
	cur      *net.UDPConn
	deadline time.Time
	closed   bool
}

func newRebindingConn(t *testing.T, host string) *rebindingConn {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(mustAddrPort(t, host)))
	require.NoError(t, err)
	return &rebindingConn{cur: c}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	ua, err := net.ResolveUDPAddr("udp", s)
	require.NoError(t, err)
	return ua.AddrPort()
}

func (r *rebindingConn) conn() *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// rebind moves the socket to a new port and closes the old one.
func (r *rebindingConn) rebind() (old, now net.Addr, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ip := r.cur.LocalAddr().(*net.UDPAddr).IP
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, nil, err
	}
	c.SetReadDeadline(r.deadline)
	prev := r.cur
	r.cur = c
	prev.Close()
	return prev.LocalAddr(), c.LocalAddr(), nil
}

func (r *rebindingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c := r.conn()
		n, a, err := c.ReadFrom(p)
		if err != nil && errors.Is(err, net.ErrClosed) {
			r.mu.Lock()
			moved := r.cur != c && !r.closed
			r.mu.Unlock()
			if moved {
				continue
			}
		}
		return n, a, err
	}
}

func (r *rebindingConn) WriteTo(p []byte, a net.Addr) (int, error) { return r.conn().WriteTo(p, a) }
func (r *rebindingConn) LocalAddr() net.Addr                       { return r.conn().LocalAddr() }

func (r *rebindingConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.cur.Close()
}

func (r *rebindingConn) SetDeadline(t time.Time) error {
	r.SetWriteDeadline(t)
	return r.SetReadDeadline(t)
}

func (r *rebindingConn) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deadline = t
	return r.cur.SetReadDeadline(t)
}

func (r *rebindingConn) SetWriteDeadline(t time.Time) error { return r.conn().SetWriteDeadline(t) }

// TestConnFollowsRebindingPeerLoopback: the node that accepted a stream
// loses its NAT mapping halfway through a transfer (its socket moves to a
// new port; the old one is gone). QUIC would follow the dialling side, not
// this one: the accepting node's connection hears nothing, it sends a
// PathLost Ping from its new port, the dialling node proves the new address
// and sends its packets there. Every byte arrives, in order, on the same
// stream, and the dialling node's Path reports the new address.
func TestConnFollowsRebindingPeerLoopback(t *testing.T) {
	tn := newLoopbackNet(t, 1, Config{})
	a := tn.nodes[0]
	rc := newRebindingConn(t, testnet.LoopbackAddr(1))
	b := tn.add(Config{PacketConn: rc, Bootstrap: []string{a.UDPAddr().String()}, JoinOnly: true})
	ca, now := echoAcrossRebind(t, a, b, rc)
	require.False(t, ca.Path().Relayed)
	require.Equal(t, now.String(), ca.Path().Remote.String())
	require.Positive(t, a.Info().Counters.PathsLost)
}

// TestCircuitFollowsRebindingEndLoopback: the same move, of an end of a
// circuit (docs/PROTOCOL.md §12.12): the relay proves the end's new address
// and forwards the circuit's frames there; the transfer completes.
func TestCircuitFollowsRebindingEndLoopback(t *testing.T) {
	tn := newLoopbackNet(t, 1, Config{})
	relay := tn.nodes[0]
	entry := []string{relay.UDPAddr().String()}
	a := tn.add(Config{ListenAddr: testnet.LoopbackAddr(1), Bootstrap: entry, JoinOnly: true, ForceRelay: true})
	rc := newRebindingConn(t, testnet.LoopbackAddr(2))
	b := tn.add(Config{PacketConn: rc, Bootstrap: entry, JoinOnly: true, ForceRelay: true}) // no upgrade to a direct path
	ca, _ := echoAcrossRebind(t, a, b, rc)
	require.True(t, ca.Path().Relayed)
	require.Positive(t, relay.Info().Counters.PathsLost)
}

// echoAcrossRebind has a open a stream to b, which echoes it; halfway
// through 2 MiB, b's socket rc moves to a new port. It checks that every
// byte came back, in order, and returns a's end and b's new address.
func echoAcrossRebind(t *testing.T, a, b *Node, rc *rebindingConn) (*Conn, net.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := b.AcceptContext(ctx)
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ca, err := a.Connect(ctx, b.ID())
	require.NoError(t, err)
	t.Cleanup(func() { ca.Close() })
	go func() { // b echoes what it reads
		cb := <-accepted
		if cb == nil {
			return
		}
		io.Copy(cb, cb)
		cb.Close()
	}()

	msg := make([]byte, 2<<20)
	rand.Read(msg)
	half := len(msg) / 2
	wrote := make(chan error, 1)
	moved := make(chan struct{})
	go func() {
		_, err := ca.Write(msg[:half])
		if err == nil {
			select {
			case <-moved:
			case <-ctx.Done():
			}
			_, err = ca.Write(msg[half:])
		}
		ca.CloseWrite()
		wrote <- err
	}()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(ca, got[:half])
	require.NoError(t, err)
	old, now, err := rc.rebind()
	require.NoError(t, err)
	t.Logf("b moved from %s to %s", old, now)
	close(moved)
	_, err = io.ReadFull(ca, got[half:])
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(msg, got), "the echo differs")
	return ca, now
}
