package overlay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// The flood tests send, from one socket, what an attacker would to fill a
// node's tables, then check that honest traffic to the node still gets
// through and that the tables stay within their bounds.

// read returns the next frame the raw sender receives, or nil after d.
func (s *rawSender) read(d time.Duration) []byte {
	buf := make([]byte, 2048)
	s.pc.SetReadDeadline(time.Now().Add(d))
	n, _, err := s.pc.ReadFrom(buf)
	if err != nil {
		var ne net.Error
		require.True(s.t, errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded), "read: %v", err)
		return nil
	}
	return buf[:n]
}

// answer answers a Ping that asks for proof with a signed Pong, as a node
// does; it reports whether frame was such a Ping.
func (s *rawSender) answer(frame []byte) bool {
	h, body, err := wire.ParseHeader(frame)
	if err != nil || h.Type != wire.TypePing {
		return false
	}
	pg, err := wire.ParsePing(body)
	if err != nil || pg.Flags&wire.FlagWantProof == 0 {
		return false
	}
	b := wire.Pong{Nonce: pg.Nonce}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePong, Net: s.net, Sender: s.id}))
	s.send(append(b, ed25519.Sign(s.priv, wire.PongSigned(b, h.Sender))...))
	return true
}

// linkWith makes the raw sender a verified peer of nd: it asks nd for
// contacts, which makes nd challenge it, and answers the challenge.
func (s *rawSender) linkWith(nd *ovnet.Node) {
	s.t.Helper()
	find := wire.Find{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeFind, Net: s.net, Sender: s.id}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := nd.PeerInfo(overlay.ID(s.id)); ok {
			return
		}
		require.True(s.t, time.Now().Before(deadline), "the raw sender was not verified")
		s.send(find)
		for f := s.read(200 * time.Millisecond); f != nil; f = s.read(50 * time.Millisecond) {
			s.answer(f)
		}
	}
}

// firstFragment builds the first fragment of a 64 KiB message to dest that
// will never complete: its origin is random and its signature garbage.
func (s *rawSender) firstFragment(dest overlay.ID) []byte {
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Dest: dest, Timestamp: time.Now().UnixMilli(), Length: wire.MaxMessage}
	rand.Read(h.Origin[:])
	rand.Read(h.MsgID[:])
	r := wire.Route{FragCount: uint16(wire.FragmentCount(wire.MaxMessage)), Msg: h, Chunk: make([]byte, wire.MaxChunk)}
	rand.Read(r.Sig[:])
	return r.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
}

// drainHopAcks reads frames until n hop acknowledgements arrived or none
// came for a second (a burst may overflow the node's socket queue): it paces
// a flood.
func (s *rawSender) drainHopAcks(n int) {
	for n > 0 {
		f := s.read(time.Second)
		if f == nil {
			return
		}
		if f[0] == wire.TypeHopAck {
			n--
		}
	}
}

func sendWithin(t *testing.T, from *ovnet.Node, data []byte, to overlay.ID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, from.Send(ctx, data, to.Key(), false))
}

func TestLoopbackDuplicateTableFloodFromOneOrigin(t *testing.T) {
	testnet.CheckLeaks(t)
	cfg := overlay.Config{Duplicates: 2048} // 128 per origin
	tn := loopback(t, 3, cfg)
	target, honest := tn.Nodes[1], tn.Nodes[2]
	s := newRawSender(t, target)

	// One outside identity sends more signed messages than the table
	// holds, paced so that the node takes them all.
	const flood = 2600
	for sent := 0; sent < flood; {
		for range 16 {
			s.send(s.message(target.ID().Key(), false, []byte{byte(sent)}, time.Now(), s.priv))
			sent++
		}
		testnet.Eventually(t, 10*time.Second, "the flood taken", func() bool {
			c := target.Info().Counters
			_, _, _, lost := target.Sock.Stats() // a burst may overflow the socket's queue
			return c.MessagesReceived+c.DroppedQueueFull+lost >= uint64(sent)
		})
	}
	inf := target.Info()
	require.LessOrEqual(t, inf.Tables.Duplicates, cfg.Duplicates)
	require.GreaterOrEqual(t, inf.Counters.ForgottenDuplicates, uint64(cfg.Duplicates/2),
		"the flooder forgets its own messages beyond its share")

	data := []byte("honest after a duplicate flood")
	sendWithin(t, honest, data, target.ID())
	require.Equal(t, target.ID(), tn.expect(data).at)
	require.LessOrEqual(t, target.Info().Tables.Duplicates, cfg.Duplicates)
}

func TestLoopbackReassemblyFloodOfForgedFirstFragments(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{}) // 8 MiB of reassembly, 512 KiB per source
	target, honest := tn.Nodes[1], tn.Nodes[2]
	s := newRawSender(t, target)

	// 130 first fragments of 64 KiB messages with no valid signature: 8.1
	// MiB, more than the node's whole reassembly space.
	const flood = 130
	for sent := 0; sent < flood; sent += 26 {
		for range 26 {
			s.send(s.firstFragment(target.ID()))
		}
		s.drainHopAcks(26)
	}
	// The last fragments' HopAcks may come back before the node has
	// counted their drops: wait for the count.
	testnet.Eventually(t, 10*time.Second, "the fragments beyond the share dropped", func() bool {
		return target.Info().Counters.DroppedSourceShare >= flood-8
	})
	inf := target.Info()
	require.LessOrEqual(t, inf.Tables.Reassembly, 512<<10, "a stranger's subnet holds 1/16 of 8 MiB at most")

	data := bytes.Repeat([]byte("multi-fragment message after a reassembly flood "), 500) // 24 KB, 23 fragments
	sendWithin(t, honest, data, target.ID())
	require.Equal(t, target.ID(), tn.expect(data).at)
}

func TestLoopbackLinkReassemblyFloodFromOneLinkedPeer(t *testing.T) {
	testnet.CheckLeaks(t)
	const service = 9
	got := make(chan []byte, 16)
	tn := ovnet.Loopback(t, 3, overlay.Config{}, func(_ int, nd *ovnet.Node) error { // 4 MiB, 256 KiB per peer
		nd.HandleLink(service, func(_ overlay.ID, data []byte) bool {
			select {
			case got <- data:
			default:
			}
			return true
		})
		return nil
	})
	target, honest := tn.Nodes[1], tn.Nodes[2]
	s := newRawSender(t, target)
	s.linkWith(target)

	// 80 first fragments of 64 KiB link messages: 5 MiB, paced so that the
	// node takes them all.
	const flood = 80
	base := target.Info().Counters.PacketsIn
	for sent := 0; sent < flood; {
		for range 10 {
			l := wire.Link{Service: service, FragCount: uint8(wire.LinkFragmentCount(wire.MaxMessage)), Length: wire.MaxMessage,
				Chunk: make([]byte, wire.MaxLinkChunk)}
			rand.Read(l.MsgID[:])
			s.send(l.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeLink, Net: s.net, Sender: s.id})))
			sent++
		}
		testnet.Eventually(t, 10*time.Second, "the flood taken", func() bool {
			_, _, _, lost := target.Sock.Stats()
			return target.Info().Counters.PacketsIn+lost >= base+uint64(sent)
		})
	}
	inf := target.Info()
	require.LessOrEqual(t, inf.Tables.LinkReassembly, 256<<10, "one peer holds 1/16 of 4 MiB at most")
	require.GreaterOrEqual(t, inf.Counters.DroppedSourceShare, uint64(flood/2))

	data := bytes.Repeat([]byte("link message after a link reassembly flood "), 500) // 21 KB
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, honest.SendLink(ctx, target.ID(), service, data))
	select {
	case m := <-got:
		require.Equal(t, data, m)
	case <-ctx.Done():
		t.Fatal("the link message was acknowledged but not handed over")
	}
}

func TestLoopbackRefusalFloodLeavesRefusalsForOthers(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{}) // 4096 refusals a minute, 256 per source
	target, honest := tn.Nodes[1], tn.Nodes[2]
	s := newRawSender(t, target)

	// An ID next to the target's that no node has: the target is the
	// closest node to it and refuses what is sent to it.
	absent := target.ID()
	absent[31] ^= 1
	const flood = 4200
	for sent := 0; sent < flood; sent += 25 {
		for range 25 {
			s.send(s.message(overlay.Key(absent), false, []byte("x"), time.Now(), s.priv))
		}
		s.drainHopAcks(25)
	}
	inf := target.Info()
	require.LessOrEqual(t, inf.Tables.Refusals, 4096/16, "one source gets its share of refusals")
	require.GreaterOrEqual(t, inf.Counters.DroppedSourceShare, uint64(flood/2))

	// An honest node is still told at once that the ID is not there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := honest.Send(ctx, []byte("to nobody"), overlay.Key(absent), false)
	require.ErrorIs(t, err, overlay.ErrUnreachable)
	require.NoError(t, ctx.Err(), "refused, not timed out")
}

// as returns a raw sender on s's socket with an identity of its own.
func (s *rawSender) as() *rawSender {
	x := *s
	_, x.priv, _ = ed25519.GenerateKey(rand.Reader)
	copy(x.id[:], x.priv.Public().(ed25519.PublicKey))
	return &x
}

func (s *rawSender) hdr(typ byte) []byte {
	return wire.AppendHeader(nil, wire.Header{Type: typ, Net: s.net, Sender: s.id})
}

func TestLoopbackStrangerGetsNoMoreBytesThanItSent(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{KeepAlive: time.Minute})
	target, other := tn.Nodes[1], tn.Nodes[2]
	// s is linked with the target; x, on the same socket (the same source
	// address), is a stranger to it. After each frame from x, s pings the
	// target: what comes back before s's Pong answered x's frame.
	s := newRawSender(t, target)
	s.linkWith(target)
	x := s.as()

	signedLeave := wire.Leave{Timestamp: time.Now().UnixMilli()}.Append(x.hdr(wire.TypeLeave))
	signedLeave = append(signedLeave, ed25519.Sign(x.priv, wire.LeaveSigned(signedLeave))...)
	unsolicitedPong := wire.Pong{Nonce: 5}.Append(x.hdr(wire.TypePong))
	unsolicitedPong = append(unsolicitedPong, ed25519.Sign(x.priv, wire.PongSigned(unsolicitedPong, target.ID()))...)
	link := wire.Link{Service: 1, FragCount: 1, Length: 1, Chunk: []byte{1}}
	addr := netip.MustParseAddrPort(s.pc.LocalAddr().String())
	otherID := other.ID()
	tests := []struct {
		name  string
		frame []byte
	}{
		{"ping", wire.Ping{Nonce: 1}.Append(x.hdr(wire.TypePing))},
		{"proof ping", wire.Ping{Nonce: 2, Flags: wire.FlagWantProof}.Append(x.hdr(wire.TypePing))},
		{"padded proof ping", wire.Ping{Nonce: 3, Flags: wire.FlagWantProof, Pad: wire.ProbeLen - wire.PingLen}.Append(x.hdr(wire.TypePing))},
		{"find", wire.Find{Nonce: 4, Target: target.ID()}.Append(x.hdr(wire.TypeFind))},
		{"padded find", wire.Find{Nonce: 4, Target: target.ID(), Pad: wire.MaxFrame - wire.FindLen}.Append(x.hdr(wire.TypeFind))},
		{"pong", unsolicitedPong},
		{"nodes", wire.Nodes{Nonce: 6, Contacts: []wire.Contact{{ID: other.ID(), Addr: addr}}}.Append(x.hdr(wire.TypeNodes))},
		{"intro", wire.Intro{Target: other.ID()}.Append(x.hdr(wire.TypeIntro))},
		{"punch", wire.Punch{Peer: other.ID(), Addr: addr}.Append(x.hdr(wire.TypePunch))},
		{"relay", append(append(x.hdr(wire.TypeRelay), otherID[:]...), wire.Ping{Nonce: 7}.Append(x.hdr(wire.TypePing))...)},
		{"relayed", append(x.hdr(wire.TypeRelayed), wire.Ping{Nonce: 8}.Append(x.hdr(wire.TypePing))...)},
		{"route", x.message(target.ID().Key(), false, []byte("from a stranger"), time.Now(), x.priv)},
		{"forged first fragment", x.firstFragment(target.ID())},
		{"hop ack", wire.HopAck{}.Append(x.hdr(wire.TypeHopAck))},
		{"leave", signedLeave},
		{"link", link.Append(x.hdr(wire.TypeLink))},
		{"link ack", wire.LinkAck{}.Append(x.hdr(wire.TypeLinkAck))},
		{"nat test", wire.NATTest{Nonce: 9, Kind: wire.ProbeOtherPort}.Append(x.hdr(wire.TypeNATTest))},
		{"nat probe", wire.NATProbe{Nonce: 9, Kind: wire.ProbeOtherIP, Status: wire.ProbeSent}.Append(x.hdr(wire.TypeNATProbe))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.send(tt.frame)
			sentinel := uint64(1000 + i)
			s.send(wire.Ping{Nonce: sentinel}.Append(s.hdr(wire.TypePing)))
			replied := 0
			for {
				f := s.read(5 * time.Second)
				require.NotNil(t, f, "the target did not answer the linked sender")
				if pong, _, err := wire.ParsePong(f); err == nil && f[0] == wire.TypePong && pong.Nonce == sentinel {
					break
				}
				if f[0] == wire.TypeRoute {
					// The acknowledgement of the stranger's message,
					// routed toward its ID through the target's contact
					// closest to it: the linked sender on this same
					// address. It is traffic to a verified contact, and
					// arrives before or after the sentinel's Pong.
					continue
				}
				replied += len(f)
			}
			require.LessOrEqual(t, replied, len(tt.frame), "bytes sent to the stranger's address for a %d-byte frame", len(tt.frame))
		})
	}
	_, known := target.PeerInfo(overlay.ID(x.id))
	require.False(t, known, "the stranger never answered a challenge")
}

func TestLoopbackJunkFloodLeavesTheNodeReachable(t *testing.T) {
	testnet.CheckLeaks(t)
	// Short keepalives, so that a few seconds of flood would make the
	// node's neighbours give it up if its answers were lost.
	cfg := overlay.Config{KeepAlive: time.Second, Liveness: time.Second}
	tn := loopback(t, 4, cfg)
	victim, honest := tn.Nodes[1], tn.Nodes[2]
	// The premise: every node has every other in its table (nodes that
	// joined concurrently may still be linking), so that what the flood
	// could cost is a contact lost, not one never made.
	testnet.Eventually(t, 10*time.Second, "every node to have the others as contacts", func() bool {
		for _, nd := range tn.Nodes {
			if nd.Info().Contacts < len(tn.Nodes)-1 {
				return false
			}
		}
		return true
	})

	// Junk at full speed from one socket for 5 s: overlay-range packets of
	// another network, malformed ones, and bytes no handler takes.
	s := newRawSender(t, victim)
	junk := [][]byte{
		wire.Ping{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePing, Net: wire.NetworkTag("junk"), Sender: s.id})),
		append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}), 1, 2, 3),
		bytes.Repeat([]byte{0x3F}, 200),
		bytes.Repeat([]byte{0x10}, 100),
	}
	done := make(chan int)
	go func() {
		n := 0
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); n++ {
			s.pc.WriteTo(junk[n%len(junk)], s.to)
		}
		done <- n
	}()
	sent, failed := 0, 0
	for flooding := true; flooding; {
		select {
		case n := <-done:
			t.Logf("%d junk packets sent", n)
			flooding = false
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if honest.Send(ctx, []byte("during the flood"), victim.ID().Key(), false) != nil {
				failed++
			}
			cancel()
			sent++
		}
	}
	inf := victim.Info()
	_, _, unhandled, lost := victim.Sock.Stats()
	t.Logf("during the flood: %d of %d honest messages failed; victim: %d contacts, wrong network %d, malformed %d, unhandled %d, socket drops %d",
		failed, sent, inf.Contacts, inf.Counters.DroppedWrongNet, inf.Counters.DroppedMalformed, unhandled, lost)

	// Right after it, every node reaches the victim at the first try.
	for i, nd := range tn.Nodes {
		if nd == victim {
			continue
		}
		data := []byte{'a', 'f', 't', 'e', 'r', byte(i)}
		sendWithin(t, nd, data, victim.ID())
		require.Equal(t, victim.ID(), tn.expect(data).at)
	}
}

func TestLoopbackSybilProofsAreRateLimitedPerSubnet(t *testing.T) {
	testnet.CheckLeaks(t)
	cfg := overlay.Config{StrangerRate: 20, StrangerRateTotal: 40}
	tn := loopback(t, 3, cfg)
	target, honest := tn.Nodes[1], tn.Nodes[2]

	// 300 identities on one address each try to prove their key to the
	// target at once (a Sybil farm from one machine).
	const sybils = 300
	farm := make([]*rawSender, sybils)
	for i := range farm {
		farm[i] = newRawSender(t, target)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, x := range farm {
		probe := wire.Ping{Nonce: 1, Flags: wire.FlagWantProof, Pad: wire.ProbeLen - wire.PingLen}.Append(x.hdr(wire.TypePing))
		wg.Go(func() {
			x.pc.WriteTo(probe, x.to)
			buf := make([]byte, 2048)
			for {
				x.pc.SetReadDeadline(time.Now().Add(time.Second))
				n, _, err := x.pc.ReadFrom(buf)
				if err != nil {
					return
				}
				h, body, err := wire.ParseHeader(buf[:n])
				if err != nil || h.Type != wire.TypePing {
					continue
				}
				if pg, err := wire.ParsePing(body); err == nil && pg.Flags&wire.FlagWantProof != 0 {
					b := wire.Pong{Nonce: pg.Nonce}.Append(x.hdr(wire.TypePong))
					x.pc.WriteTo(append(b, ed25519.Sign(x.priv, wire.PongSigned(b, h.Sender))...), x.to)
				}
			}
		})
	}
	data := []byte("honest during a Sybil farm's proofs")
	sendWithin(t, honest, data, target.ID())
	require.Equal(t, target.ID(), tn.expect(data).at)
	wg.Wait()
	elapsed := time.Since(start)

	verified := 0
	for _, x := range farm {
		if _, ok := target.PeerInfo(overlay.ID(x.id)); ok {
			verified++
		}
	}
	limited := target.Info().Counters.DroppedRateLimited
	t.Logf("%d of %d identities verified in %v; %d refused for the rate", verified, sybils, elapsed, limited)
	// Each proof takes a token for its answer, one for the challenge and
	// one to check the challenge's answer: the subnet's 40-token burst and
	// 20 a second after it.
	require.LessOrEqual(t, verified, (2*cfg.StrangerRate+int(elapsed.Seconds()+1)*cfg.StrangerRate)/2)
	require.Positive(t, limited)
}
