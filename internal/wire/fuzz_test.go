package wire

import (
	"bytes"
	"crypto/ed25519"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every fuzz target checks that its decoder does not panic and, when it
// accepts the input, that encoding the decoded value gives the input back:
// the encoding is canonical. The one exception is an address of family 6
// holding an IPv4-mapped IPv6 address (::ffff:a.b.c.d): ParseAddr unmaps it,
// so it re-encodes as family 4, 12 bytes shorter. canonAddrs rewrites such
// addresses in the input before comparing, and the targets check that the
// decoder accepts the rewritten form and decodes it to the same value.

// mappedPrefix is the first 12 bytes of an IPv4-mapped IPv6 address.
var mappedPrefix = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}

// canonAddr returns the canonical encoding of the address at the start of b
// (which ParseAddr accepted) and the bytes after it.
func canonAddr(b []byte) (canon, rest []byte) {
	switch b[0] {
	case 0:
		return b[:1], b[1:]
	case 4:
		return b[:7], b[7:]
	}
	if bytes.Equal(b[1:13], mappedPrefix) {
		return append([]byte{4}, b[13:19]...), b[19:]
	}
	return b[:19], b[19:]
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Inputs the fuzzer finds interesting are minimized, which takes a long time
// for inputs of a thousand bytes or more (the fuzzing stalls). The targets
// whose limits are that large (ParseHeader, ParseRelay, ParseRelayed) take a
// second argument, a number of zero bytes to append, so that the size limits
// are explored with short inputs.
func padded(data []byte, pad uint16, max int) []byte {
	return append(bytes.Clone(data), make([]byte, int(pad)%(max+2))...)
}

func FuzzParseHeader(f *testing.F) {
	f.Add(newFrame(TypePing), uint16(0))
	f.Add(Ping{Nonce: 1}.Append(newFrame(TypePing)), uint16(0))
	f.Add(newFrame(LastType), uint16(MaxPacket-HeaderLen))
	f.Add(newFrame(TypeRoute), uint16(MaxPacket-HeaderLen+1))
	f.Add([]byte{0x00, 0x01, 0x00, 0x00}, uint16(0))
	f.Add(AppendHeader(nil, Header{Type: TypePing, Client: true}), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, pad uint16) {
		data = padded(data, pad, MaxPacket)
		h, b, err := ParseHeader(data)
		if err != nil {
			require.Nil(t, b)
			return
		}
		require.GreaterOrEqual(t, h.Type, byte(FirstType))
		require.LessOrEqual(t, h.Type, byte(LastType))
		require.LessOrEqual(t, len(data), MaxPacket)
		require.Equal(t, data, append(AppendHeader(nil, h), b...))
	})
}

func FuzzParseAddr(f *testing.F) {
	for _, a := range []netip.AddrPort{addrNone, addrV4, addrV4Zero, addrV6, addrV6Zero} {
		f.Add(AppendAddr(nil, a))
		f.Add(cat(AppendAddr(nil, a), []byte{1, 2}))
	}
	f.Add(append(append([]byte{6}, addrMapped.Addr().AsSlice()...), 0x0F, 0xA0))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, rest, err := ParseAddr(data)
		if err != nil {
			return
		}
		canon, crest := canonAddr(data)
		require.Equal(t, rest, crest)
		require.Equal(t, canon, AppendAddr(nil, a))
		require.False(t, a.Addr().Is4In6(), "decoded addresses are unmapped")
		a2, rest2, err := ParseAddr(canon)
		require.NoError(t, err)
		require.Empty(t, rest2)
		require.Equal(t, a, a2)
	})
}

func FuzzParsePing(f *testing.F) {
	f.Add(Ping{}.Append(nil))
	f.Add(Ping{Nonce: 42, Flags: FlagPublic | FlagWantProof}.Append(nil))
	f.Add(Ping{Nonce: 42, Flags: FlagWantProof, Pad: ProbeLen - PingLen}.Append(nil))
	f.Add(append(Ping{}.Append(nil), 0, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePing(data)
		if err != nil {
			return
		}
		require.Equal(t, data, p.Append(nil))
	})
}

func FuzzParsePong(f *testing.F) {
	// The input is the body; ParsePong takes the whole frame, which the overlay
	// only passes after ParseHeader accepted it (see
	// TestWholeFrameDecodersShortInput for shorter input).
	for _, a := range []netip.AddrPort{addrNone, addrV4, addrV6} {
		p := Pong{Nonce: 7, Flags: FlagPublic, Observed: a}
		f.Add(p.Append(nil))
		signed := p.Append(newFrame(TypePong))
		f.Add(append(p.Append(nil), ed25519.Sign(testPriv, PongSigned(signed, id(1)))...))
	}
	f.Add(append(append(make([]byte, 9), 6), append(addrMapped.Addr().AsSlice(), 0, 1)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		frame := append(newFrame(TypePong), data...)
		p, signed, err := ParsePong(frame)
		if err != nil {
			require.Nil(t, signed)
			return
		}
		require.True(t, p.Sig == nil || len(p.Sig) == SigLen)
		unsigned := p.Append(newFrame(TypePong))
		canon, rest := canonAddr(data[9:])
		want := cat(data[:9], canon, rest)
		require.Equal(t, want, append(bytes.Clone(unsigned[HeaderLen:]), p.Sig...))
		require.Equal(t, frame[:len(frame)-len(p.Sig)], signed)
		if !bytes.Equal(want, data) {
			p2, _, err := ParsePong(append(newFrame(TypePong), want...))
			require.NoError(t, err)
			require.Equal(t, p, p2)
		}
	})
}

func FuzzParseFind(f *testing.F) {
	f.Add(Find{}.Append(nil))
	f.Add(Find{Nonce: 9, Target: id(2)}.Append(nil))
	f.Add(Find{Nonce: 9, Target: id(2), Pad: MaxFrame - FindLen}.Append(nil))
	f.Add(append(Find{}.Append(nil), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseFind(data)
		if err != nil {
			return
		}
		require.Equal(t, data, v.Append(nil))
	})
}

func FuzzParseNodes(f *testing.F) {
	for _, n := range []int{0, 1, 2, 5, MaxContacts} {
		f.Add(Nodes{Nonce: uint64(n), Contacts: contacts(n)}.Append(nil))
	}
	f.Add(Nodes{Contacts: []Contact{{ID: id(1)}, {ID: id(2), Addr: addrV6}}}.Append(nil))
	mapped := Nodes{Contacts: contacts(2)}.Append(nil)
	id3 := id(3)
	mapped = cat(mapped, id3[:], []byte{0, 6}, addrMapped.Addr().AsSlice(), []byte{0, 80})
	mapped[8] = 3
	f.Add(mapped)
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNodes(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(n.Contacts), MaxContacts)
		want := bytes.Clone(data[:9])
		rest := data[9:]
		for range n.Contacts {
			var canon []byte
			want = append(want, rest[:33]...)
			canon, rest = canonAddr(rest[33:])
			want = append(want, canon...)
		}
		require.Empty(t, rest)
		require.Equal(t, want, n.Append(nil))
		if !bytes.Equal(want, data) {
			n2, err := ParseNodes(want)
			require.NoError(t, err)
			require.Equal(t, n, n2)
		}
	})
}

func FuzzParseIntro(f *testing.F) {
	f.Add(Intro{Target: id(8)}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseIntro(data)
		if err != nil {
			return
		}
		require.Equal(t, data, v.Append(nil))
	})
}

func FuzzParsePunch(f *testing.F) {
	for _, a := range []netip.AddrPort{addrV4, addrV6, addrV4Zero, addrNone} {
		f.Add(Punch{Peer: id(6), Addr: a}.Append(nil))
	}
	id6 := id(6)
	f.Add(cat(id6[:], []byte{6}, addrMapped.Addr().AsSlice(), []byte{1, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePunch(data)
		if err != nil {
			return
		}
		require.True(t, p.Addr.IsValid())
		canon, rest := canonAddr(data[32:])
		require.Empty(t, rest)
		want := cat(data[:32], canon)
		require.Equal(t, want, p.Append(nil))
		if !bytes.Equal(want, data) {
			p2, err := ParsePunch(want)
			require.NoError(t, err)
			require.Equal(t, p, p2)
		}
	})
}

func FuzzParseRelay(f *testing.F) {
	ping := Ping{Nonce: 3}.Append(newFrame(TypePing))
	id1 := id(1)
	f.Add(cat(id1[:], ping), uint16(0))
	f.Add(cat(id1[:], newFrame(TypeRoute)), uint16(MaxFrame-HeaderLen))
	f.Add(cat(id1[:], newFrame(TypeRoute)), uint16(MaxFrame-HeaderLen+1))
	f.Add(cat(id1[:], relayedFrame(ping)), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, pad uint16) {
		data = padded(data, pad, 32+MaxFrame)
		target, inner, err := ParseRelay(data)
		if err != nil {
			require.Nil(t, inner)
			return
		}
		require.GreaterOrEqual(t, len(inner), HeaderLen)
		require.LessOrEqual(t, len(inner), MaxFrame)
		require.NotContains(t, []byte{TypeRelay, TypeRelayed}, inner[0])
		require.Equal(t, data, cat(target[:], inner))
	})
}

func FuzzParseRelayed(f *testing.F) {
	ping := Ping{Nonce: 3}.Append(newFrame(TypePing))
	f.Add(ping, uint16(0))
	f.Add(newFrame(TypeRoute), uint16(MaxFrame-HeaderLen))
	f.Add(newFrame(TypeRoute), uint16(MaxFrame-HeaderLen+1))
	f.Add(relayFrame(id(2), ping), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, pad uint16) {
		data = padded(data, pad, MaxFrame)
		inner, err := ParseRelayed(data)
		if err != nil {
			require.Nil(t, inner)
			return
		}
		require.GreaterOrEqual(t, len(inner), HeaderLen)
		require.LessOrEqual(t, len(inner), MaxFrame)
		require.NotContains(t, []byte{TypeRelay, TypeRelayed}, inner[0])
		require.Equal(t, data, inner)
	})
}

func FuzzParseLeave(f *testing.F) {
	// The input is the body, as for FuzzParsePong.
	l := Leave{Timestamp: 1_700_000_000_000}
	unsigned := l.Append(newFrame(TypeLeave))
	f.Add(append(l.Append(nil), ed25519.Sign(testPriv, LeaveSigned(unsigned))...))
	f.Add(l.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		frame := append(newFrame(TypeLeave), data...)
		l, signed, sig, err := ParseLeave(frame)
		if err != nil {
			return
		}
		require.Len(t, sig, SigLen)
		require.Equal(t, frame, append(l.Append(newFrame(TypeLeave)), sig...))
		require.Equal(t, LeaveSigned(frame[:HeaderLen+8]), signed)
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, n := range []int{0, 1, MaxChunk, MaxChunk + 1, 3 * MaxChunk} {
		for _, r := range routeFragments(testMsgHeader(), payload(n), testPriv) {
			f.Add(r.Append(nil))
		}
	}
	h := testMsgHeader()
	h.Kind, h.Mode = KindNack, ModeKey
	f.Add(routeFragments(h, []byte{NackNoRoute}, testPriv)[0].Append(nil))
	sealed := testMsgHeader()
	sealed.Sealed = true
	for _, n := range []int{SealOverhead, SealOverhead + 10, MaxSealed} {
		frags := routeFragments(sealed, payload(n), testPriv)
		f.Add(frags[0].Append(nil))
		f.Add(frags[len(frags)-1].Append(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRoute(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, HeaderLen+len(data), MaxFrame, "an accepted Route frame fits MaxFrame")
		require.LessOrEqual(t, r.Msg.Kind, KindNack)
		require.LessOrEqual(t, r.Msg.Mode, ModeKeyDirect)
		if r.Msg.Sealed {
			require.Equal(t, ModeID, r.Msg.Mode, "only a message to an ID is sealed")
			require.GreaterOrEqual(t, r.Msg.Length, uint32(SealOverhead))
			require.LessOrEqual(t, r.Msg.Length, uint32(MaxSealed))
		} else {
			require.LessOrEqual(t, r.Msg.Length, uint32(MaxRouted))
		}
		require.LessOrEqual(t, int(r.FragCount), MaxFragments)
		require.Equal(t, FragmentCount(int(r.Msg.Length)), int(r.FragCount))
		require.Less(t, r.FragIndex, r.FragCount)
		require.LessOrEqual(t, int(r.FragIndex)*MaxChunk+len(r.Chunk), int(r.Msg.Length),
			"the chunk lies inside the message")
		require.Equal(t, data, r.Append(nil))
	})
}

func FuzzParseHopAck(f *testing.F) {
	f.Add(HopAck{}.Append(nil))
	f.Add(HopAck{MsgID: [16]byte{9}, Kind: KindAck, FragIndex: 65}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseHopAck(data)
		if err != nil {
			return
		}
		require.Equal(t, data, a.Append(nil))
	})
}

func FuzzParseLink(f *testing.F) {
	for _, n := range []int{0, 1, MaxLinkChunk, MaxLinkChunk + 1, 3 * MaxLinkChunk} {
		for _, l := range linkFragments(ServiceGroup, [8]byte{7}, payload(n)) {
			f.Add(l.Append(nil))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLink(data)
		if err != nil {
			return
		}
		require.LessOrEqual(t, HeaderLen+len(data), MaxFrame, "an accepted Link frame fits MaxFrame")
		require.LessOrEqual(t, l.Length, uint32(MaxMessage))
		require.Equal(t, LinkFragmentCount(int(l.Length)), int(l.FragCount))
		require.Less(t, l.FragIndex, l.FragCount)
		require.LessOrEqual(t, int(l.FragIndex)*MaxLinkChunk+len(l.Chunk), int(l.Length),
			"the chunk lies inside the message")
		require.Equal(t, data, l.Append(nil))
	})
}

func FuzzParseLinkAck(f *testing.F) {
	f.Add(LinkAck{MsgID: [8]byte{1}}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseLinkAck(data)
		if err != nil {
			return
		}
		require.Equal(t, data, a.Append(nil))
	})
}

func FuzzParseSignal(f *testing.F) {
	// Long inputs stall the fuzzer while it minimizes them (see padded), so
	// the seeds stay short: the limits are reached through the length and
	// count fields (TestSignal covers messages at the limits).
	for _, s := range testSignals() {
		b, err := AppendSignal(nil, s)
		require.NoError(f, err)
		if len(b) <= 200 {
			f.Add(b)
		}
	}
	b, err := AppendSignal(nil, Signal{Kind: SignalCandidates, Candidates: make([]string, MaxCandidates)})
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{SignalVersion, SignalCandidates, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSignal(data)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, s.Kind, SignalOffer)
		require.LessOrEqual(t, s.Kind, SignalClose)
		require.LessOrEqual(t, len(s.Candidates), MaxCandidates)
		for _, c := range s.Candidates {
			require.LessOrEqual(t, len(c), MaxCandidateBytes)
		}
		b, err := AppendSignal(nil, s)
		require.NoError(t, err)
		require.Equal(t, data, b)
	})
}

func FuzzParseRelayMsg(f *testing.F) {
	for _, m := range []RelayMsg{
		{Kind: RelayRequest},
		{Kind: RelayNone},
		{Kind: RelayOffer, Port: 3478, Username: "1700003600", Password: "KxV3oXq2bJ1y0WmQe9tR5s8uZ7c="},
		{Kind: RelayOffer, Port: 1},
	} {
		b, err := AppendRelayMsg(nil, m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseRelayMsg(data)
		if err != nil {
			return
		}
		require.Contains(t, []byte{RelayRequest, RelayOffer, RelayNone}, m.Kind)
		if m.Kind == RelayOffer {
			require.NotZero(t, m.Port)
		} else {
			require.Equal(t, RelayMsg{Kind: m.Kind}, m)
		}
		b, err := AppendRelayMsg(nil, m)
		require.NoError(t, err)
		require.Equal(t, data, b)
	})
}

func FuzzParseNATTest(f *testing.F) {
	f.Add(NATTest{Nonce: 7, Kind: ProbeOtherPort}.Append(nil))
	f.Add(NATTest{Nonce: 1 << 60, Kind: ProbeOtherIP}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseNATTest(data)
		if err != nil {
			return
		}
		require.Equal(t, NATTestLen, HeaderLen+len(data))
		require.Equal(t, data, v.Append(nil))
	})
}

func FuzzParseNATProbe(f *testing.F) {
	for _, s := range []byte{ProbeIsProbe, ProbeSent, ProbeRefused} {
		f.Add(NATProbe{Nonce: 9, Kind: ProbeOtherIP, Status: s}.Append(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseNATProbe(data)
		if err != nil {
			return
		}
		require.Equal(t, NATProbeLen, HeaderLen+len(data))
		require.Equal(t, data, v.Append(nil))
	})
}
