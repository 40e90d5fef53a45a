package overlay

import (
	"bytes"
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/stretchr/testify/require"
)

// sendLink runs A's SendLink to id in the background and moves the in-memory
// network's packets until it returns; drop decides, for each packet, whether
// the network loses it.
func sendLink(t *testing.T, ln *linkedNet, id ID, payload []byte, drop func(d datagram) bool) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ln.a.SendLink(context.Background(), id, testLinkService, payload) }()
	for {
		select {
		case err := <-done:
			ln.deliver(1000) // what is still on its way: late acks, duplicates
			return err
		default:
		}
		ln.mu.Lock()
		var d datagram
		have := len(ln.queue) > 0
		if have {
			d = ln.queue[0]
			ln.queue = ln.queue[1:]
		}
		o := ln.nodes[d.to]
		ln.mu.Unlock()
		if !have {
			time.Sleep(time.Millisecond) // polling: the sender writes from its own goroutine
			continue
		}
		if o != nil && (drop == nil || !drop(d)) {
			o.HandlePacket(d.data, net.UDPAddrFromAddrPort(d.from))
		}
	}
}

// takeLinks makes node o of the linked net record the link messages of
// testLinkService it takes.
func takeLinks(o *Overlay) (got func() []linkMsg) {
	ch := make(chan linkMsg, 64)
	o.HandleLink(testLinkService, func(from ID, data []byte) bool {
		ch <- linkMsg{from, bytes.Clone(data)}
		return true
	})
	return func() []linkMsg {
		var out []linkMsg
		for {
			select {
			case m := <-ch:
				out = append(out, m)
			default:
				return out
			}
		}
	}
}

func TestFakeNetSendLink(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), MaxMessage/16)
	for _, tt := range []struct {
		name    string
		to      func(ln *linkedNet) (*Overlay, ID)
		payload []byte
		drop    func() func(d datagram) bool
	}{
		{"empty to B", linkB, nil, nil},
		{"one frame to B", linkB, []byte("hello"), nil},
		{"largest message to B", linkB, big, nil},
		{"to D relayed by B", linkD, []byte("through a relay"), nil},
		{"first fragment lost", linkB, big[:3*wire.MaxLinkChunk], func() func(d datagram) bool {
			return dropFirst(func(d datagram) bool { return d.data[0] == wire.TypeLink })
		}},
		{"acknowledgement lost", linkB, []byte("again"), func() func(d datagram) bool {
			return dropFirst(func(d datagram) bool { return d.data[0] == wire.TypeLinkAck })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { // the retransmission timeouts pass at once
				ln := newLinkedNet(t)
				defer ln.closeAll()
				to, id := tt.to(ln)
				got := takeLinks(to)
				var drop func(d datagram) bool
				if tt.drop != nil {
					drop = tt.drop()
				}
				require.NoError(t, sendLink(t, ln, id, tt.payload, drop))
				want := tt.payload
				if want == nil {
					want = []byte{}
				}
				require.Equal(t, []linkMsg{{idA, want}}, got(), "handed over once, whole, from A")
				require.Zero(t, to.Info().Counters.DroppedMalformed)
			})
		})
	}
}

func linkB(ln *linkedNet) (*Overlay, ID) { return ln.b, idB }
func linkD(ln *linkedNet) (*Overlay, ID) { return ln.d, idD }

// dropFirst returns a drop function that loses the first packet matching f.
func dropFirst(f func(d datagram) bool) func(d datagram) bool {
	dropped := false
	return func(d datagram) bool {
		if !dropped && f(d) {
			dropped = true
			return true
		}
		return false
	}
}

func TestFakeNetSendLinkFailures(t *testing.T) {
	// In a bubble: the retransmission timeouts pass at once.
	synctest.Test(t, func(t *testing.T) {
		ln := newLinkedNet(t)
		defer ln.closeAll()

		// No link with S: the caller is told, and nothing is sent.
		err := ln.a.SendLink(context.Background(), idS, testLinkService, []byte("x"))
		require.ErrorIs(t, err, ErrNoLink)
		require.Empty(t, ln.sent())

		// C has no handler for the service: no acknowledgement, four tries.
		err = sendLink(t, ln, idC, []byte("x"), nil)
		require.ErrorIs(t, err, ErrUnreachable)
		tries := 0
		for _, d := range ln.sent() {
			if d.to == addrC && d.data[0] == wire.TypeLink {
				tries++
			}
		}
		require.Equal(t, linkTries, tries)
		require.Equal(t, uint64(linkTries), ln.c.Info().Counters.DroppedNoRoute)

		// Too large.
		err = ln.a.SendLink(context.Background(), idB, testLinkService, make([]byte, MaxMessage+1))
		require.ErrorIs(t, err, ErrMessageTooLarge)
	})
}

func TestFakeNetLinkFromStrangerIsDropped(t *testing.T) {
	ln := newLinkedNet(t)
	defer ln.closeAll()
	got := takeLinks(ln.a)
	frame := from(keyS).link(testLinkService, [8]byte{1}, []byte("unverified"))[0]
	ln.a.HandlePacket(frame, net.UDPAddrFromAddrPort(addrX))
	require.Empty(t, got(), "no verified link vouches for the sender")
	require.Equal(t, uint64(1), ln.a.Info().Counters.DroppedUnknownPeer)
	for _, d := range ln.sent() {
		require.NotEqual(t, wire.TypeLinkAck, d.data[0])
	}
	// B's frame from another address is not B's either.
	frame = from(keyB).link(testLinkService, [8]byte{2}, []byte("spoofed"))[0]
	ln.a.HandlePacket(frame, net.UDPAddrFromAddrPort(addrX))
	require.Empty(t, got())
	require.Equal(t, uint64(2), ln.a.Info().Counters.DroppedUnknownPeer)
}

// A lost acknowledgement costs one fragment, not the message: the second
// try sends only the last fragment, which the receiver acknowledges again.
func TestFakeNetSendLinkLostAckCostsOneFragment(t *testing.T) {
	ln := newLinkedNet(t)
	defer ln.closeAll()
	got := takeLinks(ln.b)
	payload := bytes.Repeat([]byte{5}, 3*wire.MaxLinkChunk)
	require.NoError(t, sendLink(t, ln, idB, payload, dropFirst(func(d datagram) bool { return d.data[0] == wire.TypeLinkAck })))
	require.Equal(t, []linkMsg{{idA, payload}}, got())
	frames := 0
	for _, d := range ln.sent() {
		if d.to == addrB && d.data[0] == wire.TypeLink {
			frames++
		}
	}
	require.Equal(t, 3+1, frames)
	require.Equal(t, uint64(1), ln.a.Info().Counters.Retransmits)
	require.Equal(t, uint64(1), ln.b.Info().Counters.DroppedReplayed, "the copy is acknowledged, not handed over")
}
