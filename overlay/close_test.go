package overlay

import (
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/wire"
)

// A closing node answers nothing after its Leave: Close waits for the packet
// being handled, and drops those that come after it began. (A Pong sent after
// the Leave, to a challenge that crossed it, used to put the closed node back
// into the table of a contact that had already dropped it.)
func TestFakeNetNothingAnsweredAfterLeave(t *testing.T) {
	ln := newLinkedNet(t)
	defer ln.closeAll()
	a := ln.a
	entered, release := make(chan struct{}), make(chan struct{})
	a.HandleLink(testLinkService, func(ID, []byte) bool {
		close(entered)
		<-release // a handler at work when Close comes
		return true
	})
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		a.HandlePacket(from(keyB).link(testLinkService, [8]byte{9}, []byte("x"))[0], net.UDPAddrFromAddrPort(addrB))
	}()
	<-entered
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		a.Close()
	}()
	for !a.isClosed() { // Close has begun; there is no event to wait on
		runtime.Gosched()
	}
	// A challenge from B arrives now: it is not answered.
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		a.HandlePacket(from(keyB).ping(wire.FlagWantProof), net.UDPAddrFromAddrPort(addrB))
	}()
	close(release)
	<-handled
	<-closed
	<-pinged

	var order []byte
	for _, d := range ln.sent() {
		if d.from == addrA && d.to == addrB {
			order = append(order, d.data[0])
		}
	}
	// To B: the handler's answer, then the Leaves to B and (relayed by B)
	// to D, in either order, and nothing after them.
	require.Len(t, order, 3)
	require.Equal(t, wire.TypeLinkAck, order[0])
	require.ElementsMatch(t, []byte{wire.TypeLeave, wire.TypeRelay}, order[1:])
}
