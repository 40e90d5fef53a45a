package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Test fixtures shared with fuzz_test.go.

var (
	testNet    = NetworkTag("wire-test")
	testPriv   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testSender = [32]byte(testPriv.Public().(ed25519.PublicKey))

	addrNone   = netip.AddrPort{}
	addrV4     = netip.MustParseAddrPort("192.0.2.1:4000")
	addrV4Zero = netip.MustParseAddrPort("0.0.0.0:0")
	addrV6     = netip.MustParseAddrPort("[2001:db8::1]:65535")
	addrV6Zero = netip.MustParseAddrPort("[::]:1")
	addrMapped = netip.MustParseAddrPort("[::ffff:192.0.2.1]:4000")
)

func id(b byte) [32]byte {
	var x [32]byte
	for i := range x {
		x[i] = b + byte(i)
	}
	return x
}

func testHeader(t byte) Header { return Header{Type: t, Net: testNet, Sender: testSender} }

// newFrame starts a frame of type t.
func newFrame(t byte) []byte { return AppendHeader(nil, testHeader(t)) }

// body parses the header of frame, checks it is of type t from the test
// sender, and returns the body.
func body(t *testing.T, frame []byte, typ byte) []byte {
	t.Helper()
	h, b, err := ParseHeader(frame)
	require.NoError(t, err)
	require.Equal(t, testHeader(typ), h)
	return b
}

// payload returns n deterministic bytes.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

// routeFragments splits a message of the given payload into Route values the
// way the overlay does (overlay.encodeMessage).
func routeFragments(h MsgHeader, p []byte, priv ed25519.PrivateKey) []Route {
	h.Length = uint32(len(p))
	var sig [SigLen]byte
	copy(sig[:], ed25519.Sign(priv, h.Signed(testNet, p)))
	n := FragmentCount(len(p))
	out := make([]Route, n)
	for i := range n {
		out[i] = Route{
			Hops:      uint8(i),
			FragIndex: uint16(i),
			FragCount: uint16(n),
			Msg:       h,
			Chunk:     p[i*MaxChunk : min((i+1)*MaxChunk, len(p))],
			Sig:       sig,
		}
	}
	return out
}

func testMsgHeader() MsgHeader {
	return MsgHeader{
		Kind:      KindData,
		Mode:      ModeID,
		Service:   ServiceDHT,
		Origin:    testSender,
		Dest:      id(0x40),
		MsgID:     [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Timestamp: 1_700_000_000_123,
	}
}

func TestConstants(t *testing.T) {
	require.Equal(t, 42, HeaderLen)
	require.Equal(t, 95, msgHeaderLen)
	require.Equal(t, HeaderLen+5+95+SigLen, RouteOverhead)
	require.Equal(t, MaxFrame, RouteOverhead+MaxChunk)
	require.Equal(t, 69, MaxFragments)
	require.Equal(t, FragmentCount(MaxMessage), FragmentCount(MaxSealed), "a sealed MaxMessage takes no more fragments")
	require.Equal(t, MaxFrame+HeaderLen+32, MaxPacket)
	// The largest packet, a Relay frame wrapping a MaxFrame frame, fits the
	// IPv6 minimum MTU with the IPv6 (40) and UDP (8) headers.
	require.LessOrEqual(t, MaxPacket+40+8, 1280)
	require.Equal(t, FragmentCount(MaxMessage), MaxFragments)
	require.LessOrEqual(t, MaxFragments, 0xFFFF)
	for typ := TypePing; typ <= TypeLeave; typ++ {
		require.GreaterOrEqual(t, typ, byte(FirstType))
		require.LessOrEqual(t, typ, byte(LastType))
	}
}

func TestNetworkTag(t *testing.T) {
	require.Equal(t, NetworkTag("a"), NetworkTag("a"))
	require.NotEqual(t, NetworkTag("a"), NetworkTag("b"))
	require.NotEqual(t, NetworkTag(""), NetworkTag("p2psock"))
}

func TestHeader(t *testing.T) {
	for typ := FirstType; typ <= LastType; typ++ {
		t.Run(fmt.Sprintf("type %#x", typ), func(t *testing.T) {
			h := Header{Type: byte(typ), Net: NetworkTag("x"), Sender: id(byte(typ))}
			frame := AppendHeader([]byte{}, h)
			require.Len(t, frame, HeaderLen)
			frame = append(frame, 0xAA, 0xBB)
			got, b, err := ParseHeader(frame)
			require.NoError(t, err)
			require.Equal(t, h, got)
			require.Equal(t, []byte{0xAA, 0xBB}, b)
		})
	}
	t.Run("appends", func(t *testing.T) {
		b := AppendHeader([]byte("prefix"), testHeader(TypePing))
		require.Equal(t, []byte("prefix"), b[:6])
		require.Len(t, b, 6+HeaderLen)
	})
	t.Run("client flag", func(t *testing.T) {
		h := Header{Type: TypeFind, Net: NetworkTag("x"), Sender: id(7), Client: true}
		frame := AppendHeader(nil, h)
		require.Equal(t, Version|FlagClient, frame[1])
		got, _, err := ParseHeader(frame)
		require.NoError(t, err)
		require.Equal(t, h, got)
	})
	t.Run("SetSender", func(t *testing.T) {
		frame := AppendHeader(nil, Header{Type: TypeRoute, Net: NetworkTag("x"), Sender: id(1), Client: true})
		SetSender(frame, id(2), false)
		got, _, err := ParseHeader(frame)
		require.NoError(t, err)
		require.Equal(t, Header{Type: TypeRoute, Net: NetworkTag("x"), Sender: id(2)}, got)
		SetSender(frame, id(3), true)
		got, _, err = ParseHeader(frame)
		require.NoError(t, err)
		require.Equal(t, Header{Type: TypeRoute, Net: NetworkTag("x"), Sender: id(3), Client: true}, got)
	})
	t.Run("exactly MaxPacket", func(t *testing.T) {
		frame := append(newFrame(TypeRelay), make([]byte, MaxPacket-HeaderLen)...)
		_, b, err := ParseHeader(frame)
		require.NoError(t, err)
		require.Len(t, b, MaxPacket-HeaderLen)
	})
}

func TestHeaderRejects(t *testing.T) {
	valid := newFrame(TypePing)
	with := func(i int, v byte) []byte {
		b := bytes.Clone(valid)
		b[i] = v
		return b
	}
	tests := []struct {
		name  string
		frame []byte
		err   error
	}{
		{"nil", nil, ErrShort},
		{"one byte", []byte{TypePing}, ErrShort},
		{"HeaderLen-1", valid[:HeaderLen-1], ErrShort},
		{"MaxPacket+1", append(bytes.Clone(valid), make([]byte, MaxPacket+1-HeaderLen)...), ErrLong},
		{"version 0", with(1, 0), ErrVersion},
		{"version 2", with(1, 2), ErrVersion},
		{"version 0xFF", with(1, 0xFF), ErrVersion},
		{"version 0 with the client flag", with(1, FlagClient), ErrVersion},
		{"version 2 with the client flag", with(1, 2|FlagClient), ErrVersion},
		{"type 0x00 (STUN)", with(0, 0x00), ErrType},
		{"type 0x03", with(0, 0x03), ErrType},
		{"type 0x1F", with(0, 0x1F), ErrType},
		{"type 0x40 (QUIC)", with(0, 0x40), ErrType},
		{"type 0xFF", with(0, 0xFF), ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b, err := ParseHeader(tt.frame)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, b)
		})
	}
}

func TestAddr(t *testing.T) {
	tests := []struct {
		name string
		in   netip.AddrPort
		want netip.AddrPort // decoded value
		enc  []byte
	}{
		{"absent", addrNone, addrNone, []byte{0}},
		{"IPv4", addrV4, addrV4, []byte{4, 192, 0, 2, 1, 0x0F, 0xA0}},
		{"IPv4 zero", addrV4Zero, addrV4Zero, []byte{4, 0, 0, 0, 0, 0, 0}},
		{"IPv6", addrV6, addrV6, append(append([]byte{6}, addrV6.Addr().AsSlice()...), 0xFF, 0xFF)},
		{"IPv6 unspecified", addrV6Zero, addrV6Zero, append(append([]byte{6}, make([]byte, 16)...), 0, 1)},
		// IPv4-mapped IPv6 addresses are written as IPv4.
		{"IPv4-mapped IPv6", addrMapped, addrV4, []byte{4, 192, 0, 2, 1, 0x0F, 0xA0}},
		// The zone is not carried.
		{"IPv6 with zone", netip.MustParseAddrPort("[fe80::1%eth0]:9"), netip.MustParseAddrPort("[fe80::1]:9"),
			append(append([]byte{6}, netip.MustParseAddr("fe80::1").AsSlice()...), 0, 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := AppendAddr(nil, tt.in)
			require.Equal(t, tt.enc, enc)
			got, rest, err := ParseAddr(append(enc, 0xEE))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, []byte{0xEE}, rest)
		})
	}
	t.Run("family 6 holding an IPv4-mapped address decodes as IPv4", func(t *testing.T) {
		enc := append(append([]byte{6}, addrMapped.Addr().AsSlice()...), 0x0F, 0xA0)
		got, rest, err := ParseAddr(enc)
		require.NoError(t, err)
		require.Empty(t, rest)
		require.Equal(t, addrV4, got)
		require.True(t, got.Addr().Is4())
	})
}

func TestAddrRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"family 1", []byte{1, 0, 0, 0, 0, 0, 0}, ErrAddrFamily},
		{"family 5", []byte{5, 0, 0, 0, 0, 0, 0}, ErrAddrFamily},
		{"family 0xFF", []byte{0xFF}, ErrAddrFamily},
		{"IPv4 without port", []byte{4, 1, 2, 3, 4}, ErrShort},
		{"IPv4 half port", []byte{4, 1, 2, 3, 4, 0}, ErrShort},
		{"IPv6 truncated", append([]byte{6}, make([]byte, 17)...), ErrShort},
		{"IPv6 family with IPv4 length", []byte{6, 1, 2, 3, 4, 0, 1}, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseAddr(tt.in)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestPing(t *testing.T) {
	for _, p := range []Ping{{}, {Nonce: 1, Flags: FlagPublic}, {Nonce: ^uint64(0), Flags: FlagPublic | FlagWantProof}} {
		t.Run(fmt.Sprintf("%x/%d", p.Nonce, p.Flags), func(t *testing.T) {
			frame := p.Append(newFrame(TypePing))
			require.Len(t, frame, HeaderLen+9)
			got, err := ParsePing(body(t, frame, TypePing))
			require.NoError(t, err)
			require.Equal(t, p, got)
		})
	}
	padded := Ping{Nonce: 5, Flags: FlagWantProof, Pad: ProbeLen - PingLen}
	frame := padded.Append(newFrame(TypePing))
	require.Len(t, frame, ProbeLen)
	got, err := ParsePing(body(t, frame, TypePing))
	require.NoError(t, err)
	require.Equal(t, padded, got)
	for _, in := range [][]byte{make([]byte, 0), make([]byte, 8), append(make([]byte, 9), 0, 7)} {
		t.Run(fmt.Sprintf("reject %x", in), func(t *testing.T) {
			_, err := ParsePing(in)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestPong(t *testing.T) {
	pinger := id(0x90)
	for _, addr := range []struct {
		name string
		a    netip.AddrPort
	}{{"no address", addrNone}, {"IPv4", addrV4}, {"IPv6", addrV6}} {
		for _, signed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s signed=%v", addr.name, signed), func(t *testing.T) {
				p := Pong{Nonce: 0x0102030405060708, Flags: FlagPublic, Observed: addr.a}
				frame := p.Append(newFrame(TypePong))
				unsigned := bytes.Clone(frame)
				if signed {
					p.Sig = ed25519.Sign(testPriv, PongSigned(frame, pinger))
					frame = append(frame, p.Sig...)
				}
				body(t, frame, TypePong)
				got, gotSigned, err := ParsePong(frame)
				require.NoError(t, err)
				require.Equal(t, p, got)
				require.Equal(t, unsigned, gotSigned)
				if signed {
					require.True(t, ed25519.Verify(testPriv.Public().(ed25519.PublicKey), PongSigned(gotSigned, pinger), got.Sig))
					require.False(t, ed25519.Verify(testPriv.Public().(ed25519.PublicKey), PongSigned(gotSigned, id(0x91)), got.Sig),
						"the signature is bound to the pinger's ID")
				}
			})
		}
	}
	t.Run("largest fits MaxFrame", func(t *testing.T) {
		frame := Pong{Observed: addrV6}.Append(newFrame(TypePong))
		frame = append(frame, make([]byte, SigLen)...)
		require.Len(t, frame, HeaderLen+9+19+SigLen)
		require.LessOrEqual(t, len(frame), MaxFrame)
	})
}

func TestPongRejects(t *testing.T) {
	base := Pong{Nonce: 5, Observed: addrV4}.Append(newFrame(TypePong))
	tests := []struct {
		name  string
		frame []byte
		err   error
	}{
		{"empty body", newFrame(TypePong), ErrShort},
		{"8-byte body", append(newFrame(TypePong), make([]byte, 8)...), ErrShort},
		{"no address", append(newFrame(TypePong), make([]byte, 9)...), ErrShort},
		{"bad address family", append(append(newFrame(TypePong), make([]byte, 9)...), 9), ErrAddrFamily},
		{"truncated address", base[:len(base)-1], ErrShort},
		{"1 trailing byte", append(bytes.Clone(base), 0), ErrMalformed},
		{"SigLen-1 trailing bytes", append(bytes.Clone(base), make([]byte, SigLen-1)...), ErrMalformed},
		{"SigLen+1 trailing bytes", append(bytes.Clone(base), make([]byte, SigLen+1)...), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, signed, err := ParsePong(tt.frame)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, signed)
		})
	}
}

// TestWholeFrameDecodersShortInput checks that ParsePong and ParseLeave, which
// take the whole frame rather than the body, reject a frame shorter than a
// header instead of panicking ("Decoders never panic"). The overlay only calls
// them after ParseHeader, so this is a contract issue, not a reachable crash.
func TestWholeFrameDecodersShortInput(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"ParsePong":  func(b []byte) error { _, _, err := ParsePong(b); return err },
		"ParseLeave": func(b []byte) error { _, _, _, err := ParseLeave(b); return err },
	}
	for name, dec := range decoders {
		for _, n := range []int{0, 1, HeaderLen - 1} {
			t.Run(fmt.Sprintf("%s %d bytes", name, n), func(t *testing.T) {
				var err error
				panicked := func() (p any) {
					defer func() { p = recover() }()
					err = dec(make([]byte, n))
					return nil
				}()
				if panicked != nil {
					t.Fatalf("%s panics on a %d-byte frame: %v", name, n, panicked)
				}
				require.Error(t, err)
			})
		}
	}
}

func TestFind(t *testing.T) {
	f := Find{Nonce: 99, Target: id(3)}
	frame := f.Append(newFrame(TypeFind))
	require.Len(t, frame, HeaderLen+40)
	got, err := ParseFind(body(t, frame, TypeFind))
	require.NoError(t, err)
	require.Equal(t, f, got)
	f.Pad = MaxFrame - FindLen
	got, err = ParseFind(body(t, f.Append(newFrame(TypeFind)), TypeFind))
	require.NoError(t, err)
	require.Equal(t, f, got)
	for _, in := range [][]byte{make([]byte, 0), make([]byte, 39), append(make([]byte, 40), 1)} {
		t.Run(fmt.Sprintf("reject %d bytes", len(in)), func(t *testing.T) {
			_, err := ParseFind(in)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func contacts(n int) []Contact {
	addrs := []netip.AddrPort{addrV4, addrV6, addrNone, addrV4Zero}
	cs := make([]Contact, n)
	for i := range cs {
		cs[i] = Contact{ID: id(byte(i)), Flags: byte(i % 2), Addr: addrs[i%len(addrs)]}
	}
	return cs
}

func TestNodes(t *testing.T) {
	allV6 := contacts(MaxContacts)
	for i := range allV6 {
		allV6[i].Addr = addrV6
	}
	tests := []struct {
		name string
		n    Nodes
	}{
		{"0 contacts", Nodes{Nonce: 1, Contacts: []Contact{}}},
		{"1 contact IPv4", Nodes{Nonce: 2, Contacts: []Contact{{ID: id(1), Flags: FlagPublic, Addr: addrV4}}}},
		{"1 contact IPv6", Nodes{Nonce: 3, Contacts: []Contact{{ID: id(1), Addr: addrV6}}}},
		{"1 contact no address", Nodes{Nonce: 4, Contacts: []Contact{{ID: id(1)}}}},
		{"mixed addresses", Nodes{Nonce: 5, Contacts: contacts(7)}},
		{"MaxContacts mixed", Nodes{Nonce: 6, Contacts: contacts(MaxContacts)}},
		{"MaxContacts IPv6 (largest)", Nodes{Nonce: ^uint64(0), Contacts: allV6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := tt.n.Append(newFrame(TypeNodes))
			require.LessOrEqual(t, len(frame), MaxFrame)
			got, err := ParseNodes(body(t, frame, TypeNodes))
			require.NoError(t, err)
			require.Equal(t, tt.n, got)
		})
	}
	t.Run("largest fits MaxFrame", func(t *testing.T) {
		frame := Nodes{Contacts: allV6}.Append(newFrame(TypeNodes))
		require.Len(t, frame, HeaderLen+9+MaxContacts*(32+1+19))
		require.LessOrEqual(t, len(frame), MaxFrame)
	})
	t.Run("nil contacts decode as empty", func(t *testing.T) {
		got, err := ParseNodes(Nodes{Nonce: 1}.Append(nil))
		require.NoError(t, err)
		require.Empty(t, got.Contacts)
	})
	t.Run("mapped address decodes as IPv4", func(t *testing.T) {
		got, err := ParseNodes(Nodes{Contacts: []Contact{{ID: id(1), Addr: addrMapped}}}.Append(nil))
		require.NoError(t, err)
		require.Equal(t, addrV4, got.Contacts[0].Addr)
	})
}

func TestNodesRejects(t *testing.T) {
	one := Nodes{Nonce: 1, Contacts: contacts(1)}.Append(nil)
	over := Nodes{Nonce: 1, Contacts: contacts(MaxContacts + 1)}.Append(nil)
	badFamily := bytes.Clone(one)
	badFamily[9+33] = 5
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"no count", make([]byte, 8), ErrShort},
		{"count MaxContacts+1", over, ErrMalformed},
		{"count 255", append(make([]byte, 8), 255), ErrMalformed},
		{"count 1 no contact", append(make([]byte, 8), 1), ErrShort},
		{"contact without address", one[:9+33], ErrShort},
		{"truncated address", one[:len(one)-1], ErrShort},
		{"bad address family", badFamily, ErrAddrFamily},
		{"count 0 trailing byte", append(make([]byte, 9), 0), ErrMalformed},
		{"count 1 trailing byte", append(bytes.Clone(one), 0), ErrMalformed},
		{"count 1 with two contacts", func() []byte {
			b := Nodes{Nonce: 1, Contacts: contacts(2)}.Append(nil)
			b[8] = 1
			return b
		}(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNodes(tt.body)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestIntro(t *testing.T) {
	i := Intro{Target: id(9)}
	frame := i.Append(newFrame(TypeIntro))
	require.Len(t, frame, HeaderLen+32)
	got, err := ParseIntro(body(t, frame, TypeIntro))
	require.NoError(t, err)
	require.Equal(t, i, got)
	for _, n := range []int{0, 31, 33} {
		t.Run(fmt.Sprintf("reject length %d", n), func(t *testing.T) {
			_, err := ParseIntro(make([]byte, n))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestPunch(t *testing.T) {
	t.Run("unspecified address rejected", func(t *testing.T) {
		_, err := ParsePunch(Punch{Peer: id(4), Addr: addrV4Zero}.Append(nil))
		require.ErrorIs(t, err, ErrMalformed)
	})
	for _, a := range []netip.AddrPort{addrV4, addrV6} {
		t.Run(a.String(), func(t *testing.T) {
			p := Punch{Peer: id(4), Addr: a}
			frame := p.Append(newFrame(TypePunch))
			got, err := ParsePunch(body(t, frame, TypePunch))
			require.NoError(t, err)
			require.Equal(t, p, got)
		})
	}
	t.Run("mapped address decodes as IPv4", func(t *testing.T) {
		got, err := ParsePunch(Punch{Peer: id(4), Addr: addrMapped}.Append(nil))
		require.NoError(t, err)
		require.Equal(t, addrV4, got.Addr)
	})
	valid := Punch{Peer: id(4), Addr: addrV4}.Append(nil)
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"31 bytes", make([]byte, 31), ErrShort},
		{"no address", make([]byte, 32), ErrShort},
		{"absent address", Punch{Peer: id(4)}.Append(nil), ErrMalformed},
		{"bad family", append(make([]byte, 32), 7, 0, 0, 0, 0, 0, 0), ErrAddrFamily},
		{"truncated address", valid[:len(valid)-1], ErrShort},
		{"trailing byte", append(bytes.Clone(valid), 0), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run("reject "+tt.name, func(t *testing.T) {
			_, err := ParsePunch(tt.body)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

// relayFrame wraps inner in a Relay frame to target.
func relayFrame(target [32]byte, inner []byte) []byte {
	return append(append(newFrame(TypeRelay), target[:]...), inner...)
}

func relayedFrame(inner []byte) []byte { return append(newFrame(TypeRelayed), inner...) }

// innerFrame returns a valid-looking frame of type typ and exactly n bytes.
func innerFrame(typ byte, n int) []byte {
	f := AppendHeader(nil, Header{Type: typ, Net: testNet, Sender: id(0x33)})
	return append(f, payload(n-len(f))...)
}

func TestRelay(t *testing.T) {
	ping := Ping{Nonce: 3}.Append(AppendHeader(nil, Header{Type: TypePing, Net: testNet, Sender: id(0x33)}))
	for _, tt := range []struct {
		name  string
		inner []byte
	}{
		{"ping", ping},
		{"header only", innerFrame(TypeLeave, HeaderLen)},
		{"MaxFrame", innerFrame(TypeRoute, MaxFrame)},
		{"unknown type", innerFrame(0x3F, 100)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame := relayFrame(id(5), tt.inner)
			require.LessOrEqual(t, len(frame), MaxPacket)
			target, inner, err := ParseRelay(body(t, frame, TypeRelay))
			require.NoError(t, err)
			require.Equal(t, id(5), target)
			require.Equal(t, tt.inner, inner)
		})
	}
	t.Run("MaxFrame inner fits MaxPacket exactly", func(t *testing.T) {
		require.Len(t, relayFrame(id(5), innerFrame(TypeRoute, MaxFrame)), MaxPacket)
	})
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"target only", make([]byte, 32), ErrShort},
		{"inner shorter than a header", append(make([]byte, 32), innerFrame(TypePing, HeaderLen)[:HeaderLen-1]...), ErrShort},
		{"inner MaxFrame+1", append(make([]byte, 32), innerFrame(TypeRoute, MaxFrame+1)...), ErrLong},
		{"nested Relay", append(make([]byte, 32), relayFrame(id(6), ping)...), ErrMalformed},
		{"nested Relayed", append(make([]byte, 32), relayedFrame(ping)...), ErrMalformed},
		{"nested Relay header only", append(make([]byte, 32), innerFrame(TypeRelay, HeaderLen)...), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run("reject "+tt.name, func(t *testing.T) {
			_, inner, err := ParseRelay(tt.body)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, inner)
		})
	}
}

func TestRelayed(t *testing.T) {
	ping := Ping{Nonce: 3}.Append(AppendHeader(nil, Header{Type: TypePing, Net: testNet, Sender: id(0x33)}))
	for _, tt := range []struct {
		name  string
		inner []byte
	}{
		{"ping", ping},
		{"header only", innerFrame(TypeHopAck, HeaderLen)},
		{"MaxFrame", innerFrame(TypeRoute, MaxFrame)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame := relayedFrame(tt.inner)
			require.LessOrEqual(t, len(frame), MaxPacket)
			inner, err := ParseRelayed(body(t, frame, TypeRelayed))
			require.NoError(t, err)
			require.Equal(t, tt.inner, inner)
		})
	}
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"inner shorter than a header", ping[:HeaderLen-1], ErrShort},
		{"inner MaxFrame+1", innerFrame(TypeRoute, MaxFrame+1), ErrLong},
		{"nested Relay", relayFrame(id(6), ping), ErrMalformed},
		{"nested Relayed", relayedFrame(ping), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run("reject "+tt.name, func(t *testing.T) {
			inner, err := ParseRelayed(tt.body)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, inner)
		})
	}
}

func TestLeave(t *testing.T) {
	for _, ts := range []int64{0, 1_700_000_000_000, -1} {
		t.Run(fmt.Sprint(ts), func(t *testing.T) {
			l := Leave{Timestamp: ts}
			frame := l.Append(newFrame(TypeLeave))
			sig := ed25519.Sign(testPriv, LeaveSigned(frame))
			frame = append(frame, sig...)
			body(t, frame, TypeLeave)
			got, signed, gotSig, err := ParseLeave(frame)
			require.NoError(t, err)
			require.Equal(t, l, got)
			require.Equal(t, sig, gotSig)
			require.Equal(t, LeaveSigned(frame[:HeaderLen+8]), signed)
			require.True(t, ed25519.Verify(testPriv.Public().(ed25519.PublicKey), signed, gotSig))
		})
	}
	for _, n := range []int{0, 8, 8 + SigLen - 1, 8 + SigLen + 1} {
		t.Run(fmt.Sprintf("reject body length %d", n), func(t *testing.T) {
			_, signed, sig, err := ParseLeave(append(newFrame(TypeLeave), make([]byte, n)...))
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, signed)
			require.Nil(t, sig)
		})
	}
}

func TestHopAck(t *testing.T) {
	for _, a := range []HopAck{{}, {MsgID: [16]byte{1, 2, 3}, Kind: KindAck, FragIndex: 65}, {Kind: KindNack, FragIndex: 0xFFFF}} {
		t.Run(fmt.Sprintf("%d/%d", a.Kind, a.FragIndex), func(t *testing.T) {
			frame := a.Append(newFrame(TypeHopAck))
			require.Len(t, frame, HeaderLen+19)
			got, err := ParseHopAck(body(t, frame, TypeHopAck))
			require.NoError(t, err)
			require.Equal(t, a, got)
		})
	}
	for _, n := range []int{0, 18, 20} {
		t.Run(fmt.Sprintf("reject length %d", n), func(t *testing.T) {
			_, err := ParseHopAck(make([]byte, n))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestFragmentCount(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 1}, {1, 1}, {MaxChunk - 1, 1}, {MaxChunk, 1}, {MaxChunk + 1, 2},
		{2 * MaxChunk, 2}, {2*MaxChunk + 1, 3}, {MaxMessage, MaxFragments},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			require.Equal(t, tt.want, FragmentCount(tt.n))
		})
	}
}

func TestRoute(t *testing.T) {
	pub := testPriv.Public().(ed25519.PublicKey)
	for _, n := range []int{0, 1, MaxChunk - 1, MaxChunk, MaxChunk + 1, 2 * MaxChunk, 2*MaxChunk + 1, MaxMessage} {
		for _, kind := range []struct {
			name       string
			kind, mode byte
			sealed     bool
		}{{"data/id", KindData, ModeID, false}, {"ack/key", KindAck, ModeKey, false}, {"nack/id", KindNack, ModeID, false},
			{"data/id/sealed", KindData, ModeID, true}, {"ack/id/sealed", KindAck, ModeID, true}} {
			n := n
			if kind.sealed {
				n += SealOverhead // a sealed payload of n bytes
			}
			t.Run(fmt.Sprintf("length %d %s", n, kind.name), func(t *testing.T) {
				h := testMsgHeader()
				h.Kind, h.Mode, h.Sealed = kind.kind, kind.mode, kind.sealed
				p := payload(n)
				frags := routeFragments(h, p, testPriv)
				require.Len(t, frags, FragmentCount(n))
				reasm := []byte{}
				for i, r := range frags {
					frame := r.Append(newFrame(TypeRoute))
					require.LessOrEqual(t, len(frame), MaxFrame)
					require.Len(t, frame, RouteOverhead+len(r.Chunk))
					require.Equal(t, r.Hops, frame[HopsOffset])
					got, err := ParseRoute(body(t, frame, TypeRoute))
					require.NoError(t, err, "fragment %d", i)
					require.Equal(t, r, got)
					if i < len(frags)-1 {
						require.Len(t, got.Chunk, MaxChunk, "all but the last fragment are full")
					}
					reasm = append(reasm, got.Chunk...)
				}
				require.Equal(t, p, reasm)
				last := frags[len(frags)-1]
				require.True(t, ed25519.Verify(pub, last.Msg.Signed(testNet, reasm), last.Sig[:]))
				require.False(t, ed25519.Verify(pub, last.Msg.Signed(NetworkTag("other"), reasm), last.Sig[:]),
					"the signature is bound to the network")
			})
		}
	}
	t.Run("largest frame is exactly MaxFrame", func(t *testing.T) {
		r := routeFragments(testMsgHeader(), payload(MaxMessage), testPriv)[0]
		require.Len(t, r.Chunk, MaxChunk)
		require.Len(t, r.Append(newFrame(TypeRoute)), MaxFrame)
	})
	t.Run("chunk aliases body", func(t *testing.T) {
		b := routeFragments(testMsgHeader(), payload(10), testPriv)[0].Append(nil)
		got, err := ParseRoute(b)
		require.NoError(t, err)
		b[5+msgHeaderLen] ^= 0xFF
		require.Equal(t, b[5+msgHeaderLen], got.Chunk[0])
	})
	t.Run("sealed MaxMessage fits", func(t *testing.T) {
		h := testMsgHeader()
		h.Sealed = true
		frags := routeFragments(h, payload(MaxSealed), testPriv)
		require.Len(t, frags, MaxFragments)
		for _, r := range frags {
			b := r.Append(newFrame(TypeRoute))
			require.LessOrEqual(t, len(b), MaxFrame)
			got, err := ParseRoute(b[HeaderLen:])
			require.NoError(t, err)
			require.True(t, got.Msg.Sealed)
			require.Equal(t, ModeID, got.Msg.Mode)
			require.Equal(t, ModeID|FlagSealed, b[48], "the mode byte carries FlagSealed")
		}
	})
	t.Run("sealing info binds the header", func(t *testing.T) {
		h := testMsgHeader()
		h.Sealed, h.Length = true, 100
		info := h.Sealing(testNet)
		require.Equal(t, []byte("p2psock seal v1\x00"), info[:16])
		require.Equal(t, testNet[:], info[16:24])
		require.Len(t, info, 16+8+msgHeaderLen)
		for _, mod := range []func(*MsgHeader){
			func(m *MsgHeader) { m.Kind = KindAck },
			func(m *MsgHeader) { m.Service++ },
			func(m *MsgHeader) { m.Origin[0] ^= 1 },
			func(m *MsgHeader) { m.Dest[0] ^= 1 },
			func(m *MsgHeader) { m.MsgID[0] ^= 1 },
			func(m *MsgHeader) { m.Timestamp++ },
			func(m *MsgHeader) { m.Length++ },
		} {
			m := h
			mod(&m)
			require.NotEqual(t, info, m.Sealing(testNet))
		}
		require.NotEqual(t, info, h.Sealing(NetworkTag("other")))
	})
	t.Run("any hop count", func(t *testing.T) {
		r := routeFragments(testMsgHeader(), payload(3), testPriv)[0]
		r.Hops = 255
		got, err := ParseRoute(r.Append(nil))
		require.NoError(t, err)
		require.Equal(t, uint8(255), got.Hops)
	})
}

func TestMsgHeaderSigned(t *testing.T) {
	h := testMsgHeader()
	h.Length = 3
	s := h.Signed(testNet, []byte{1, 2, 3})
	require.Equal(t, []byte("p2psock msg v1\x00"), s[:15])
	require.Equal(t, testNet[:], s[15:23])
	require.Len(t, s, 15+8+msgHeaderLen+3)
	// Every header field is covered.
	for _, mod := range []func(*MsgHeader){
		func(m *MsgHeader) { m.Kind = KindAck },
		func(m *MsgHeader) { m.Mode = ModeKey },
		func(m *MsgHeader) { m.Sealed = true },
		func(m *MsgHeader) { m.Origin[31] ^= 1 },
		func(m *MsgHeader) { m.Dest[0] ^= 1 },
		func(m *MsgHeader) { m.MsgID[15] ^= 1 },
		func(m *MsgHeader) { m.Timestamp++ },
		func(m *MsgHeader) { m.Length++ },
	} {
		m := h
		mod(&m)
		require.NotEqual(t, s, m.Signed(testNet, []byte{1, 2, 3}))
	}
}

func TestRouteRejects(t *testing.T) {
	// mk builds fragment idx of an n-byte message, then lets mod spoil it.
	mk := func(n, idx int, mod func(*Route)) []byte {
		r := routeFragments(testMsgHeader(), payload(n), testPriv)[idx]
		r.Chunk = bytes.Clone(r.Chunk)
		if mod != nil {
			mod(&r)
		}
		return r.Append(nil)
	}
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"one short of minimum", mk(0, 0, nil)[:5+msgHeaderLen+SigLen-1], ErrShort},
		{"FragCount 0 for empty message", mk(0, 0, func(r *Route) { r.FragCount = 0 }), ErrMalformed},
		{"FragCount 2 for empty message", mk(0, 0, func(r *Route) { r.FragCount = 2 }), ErrMalformed},
		{"FragCount too small", mk(MaxChunk+1, 0, func(r *Route) { r.FragCount = 1 }), ErrMalformed},
		{"FragCount too large", mk(MaxChunk+1, 0, func(r *Route) { r.FragCount = 3 }), ErrMalformed},
		{"FragCount 0xFFFF", mk(MaxMessage, 0, func(r *Route) { r.FragCount = 0xFFFF }), ErrMalformed},
		{"FragIndex == FragCount", mk(MaxChunk+1, 1, func(r *Route) { r.FragIndex = 2 }), ErrMalformed},
		{"FragIndex 0xFFFF", mk(MaxChunk+1, 1, func(r *Route) { r.FragIndex = 0xFFFF }), ErrMalformed},
		{"FragIndex == FragCount, empty chunk", mk(0, 0, func(r *Route) { r.FragIndex = 1 }), ErrMalformed},
		{"first fragment chunk short", mk(2*MaxChunk, 0, func(r *Route) { r.Chunk = r.Chunk[:MaxChunk-1] }), ErrMalformed},
		{"first fragment chunk long", mk(2*MaxChunk, 0, func(r *Route) { r.Chunk = append(r.Chunk, 0) }), ErrMalformed},
		{"middle fragment chunk short", mk(3*MaxChunk, 1, func(r *Route) { r.Chunk = r.Chunk[:1] }), ErrMalformed},
		{"last fragment chunk short", mk(MaxChunk+10, 1, func(r *Route) { r.Chunk = r.Chunk[:9] }), ErrMalformed},
		{"last fragment chunk long", mk(MaxChunk+10, 1, func(r *Route) { r.Chunk = append(r.Chunk, 0) }), ErrMalformed},
		{"last fragment full chunk", mk(MaxChunk+10, 1, func(r *Route) { r.Chunk = make([]byte, MaxChunk) }), ErrMalformed},
		{"single fragment chunk empty", mk(5, 0, func(r *Route) { r.Chunk = nil }), ErrMalformed},
		{"empty message with chunk", mk(0, 0, func(r *Route) { r.Chunk = []byte{1} }), ErrMalformed},
		{"Length MaxRouted+1", mk(0, 0, func(r *Route) {
			r.Msg.Length = MaxRouted + 1
			r.FragCount = uint16(FragmentCount(MaxRouted + 1))
			r.FragIndex = r.FragCount - 1
			r.Chunk = make([]byte, MaxRouted+1-int(r.FragIndex)*MaxChunk)
		}), ErrLong},
		{"Length 0xFFFFFFFF", mk(0, 0, func(r *Route) { r.Msg.Length = 0xFFFFFFFF }), ErrLong},
		{"Kind 3", mk(1, 0, func(r *Route) { r.Msg.Kind = 3 }), ErrMalformed},
		{"Kind 0xFF", mk(1, 0, func(r *Route) { r.Msg.Kind = 0xFF }), ErrMalformed},
		{"Mode 3", mk(1, 0, func(r *Route) { r.Msg.Mode = 3 }), ErrMalformed},
		{"Mode 0xFF", mk(1, 0, func(r *Route) { r.Msg.Mode = 0xFF }), ErrMalformed},
		{"Mode 0x81 (sealed ModeKey)", mk(SealOverhead, 0, func(r *Route) { r.Msg.Mode = ModeKey | FlagSealed }), ErrMalformed},
		{"sealed ModeKey", mk(SealOverhead, 0, func(r *Route) { r.Msg.Mode, r.Msg.Sealed = ModeKey, true }), ErrMalformed},
		{"sealed, shorter than the overhead", mk(SealOverhead-1, 0, func(r *Route) { r.Msg.Sealed = true }), ErrMalformed},
		{"sealed, empty", mk(0, 0, func(r *Route) { r.Msg.Sealed = true }), ErrMalformed},
		{"sealed Length MaxSealed+1", mk(0, 0, func(r *Route) {
			r.Msg.Sealed = true
			r.Msg.Length = MaxSealed + 1
			r.FragCount = uint16(FragmentCount(MaxSealed + 1))
			r.FragIndex = r.FragCount - 1
			r.Chunk = make([]byte, MaxSealed+1-int(r.FragIndex)*MaxChunk)
		}), ErrLong},
		{"clear Length MaxSealed", mk(0, 0, func(r *Route) {
			r.Msg.Length = MaxSealed
			r.FragCount = uint16(FragmentCount(MaxSealed))
			r.FragIndex = r.FragCount - 1
			r.Chunk = make([]byte, MaxSealed-int(r.FragIndex)*MaxChunk)
		}), ErrLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRoute(tt.body)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

// TestProtocolExample checks the worked Ping/Pong example of docs/PROTOCOL.md
// (§6.4), byte for byte.
func TestProtocolExample(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
		require.NoError(t, err)
		return b
	}
	privA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	privB := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	a := [32]byte(privA.Public().(ed25519.PublicKey))
	b := [32]byte(privB.Public().(ed25519.PublicKey))
	require.Equal(t, unhex("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"), a[:])
	require.Equal(t, unhex("8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"), b[:])
	tag := NetworkTag("p2psock")
	require.Equal(t, unhex("6707811043c0239d"), tag[:])
	require.Equal(t, unhex("ef47c7bbe2b82772"), func() []byte { e := NetworkTag(""); return e[:] }())

	ping := Ping{Nonce: 0x0102030405060708, Flags: FlagWantProof}.Append(
		AppendHeader(nil, Header{Type: TypePing, Net: tag, Sender: a}))
	require.Equal(t, unhex(`20 01 6707811043c0239d
		8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c
		0102030405060708 02`), ping)

	pong := Pong{Nonce: 0x0102030405060708, Flags: FlagPublic, Observed: netip.MustParseAddrPort("203.0.113.7:50123")}.Append(
		AppendHeader(nil, Header{Type: TypePong, Net: tag, Sender: b}))
	signed := PongSigned(pong, a)
	require.Equal(t, unhex(`703270736f636b20706f6e672076310021016707811043c0239d8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39401020304050607080104cb007107c3cb8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c`), signed)
	pong = append(pong, ed25519.Sign(privB, signed)...)
	require.Equal(t, unhex(`21 01 6707811043c0239d
		8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394
		0102030405060708 01 04cb007107c3cb
		017f8d4911e4a37c40bb33da249c4efa5f77b602c379158832de4dc19afba265
		8f996aa0d1f5ed634e7386091083bf93be367bd602b86f37db034526bfb07a03`), pong)
	got, gotSigned, err := ParsePong(pong)
	require.NoError(t, err)
	require.True(t, ed25519.Verify(b[:], PongSigned(gotSigned, a), got.Sig))
}

// linkFragments splits a payload into the Link values a sender sends.
func linkFragments(service byte, id [8]byte, p []byte) []Link {
	n := LinkFragmentCount(len(p))
	out := make([]Link, n)
	for i := range n {
		out[i] = Link{Service: service, MsgID: id, FragIndex: uint8(i), FragCount: uint8(n), Length: uint32(len(p)),
			Chunk: p[i*MaxLinkChunk : min((i+1)*MaxLinkChunk, len(p))]}
	}
	return out
}

func TestLink(t *testing.T) {
	require.Equal(t, HeaderLen+15, LinkOverhead)
	require.Equal(t, MaxFrame, LinkOverhead+MaxLinkChunk)
	require.LessOrEqual(t, MaxLinkFragments, 255, "a fragment count fits its byte")
	for _, n := range []int{0, 1, MaxLinkChunk, MaxLinkChunk + 1, 1181, MaxMessage} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p := payload(n)
			frags := linkFragments(ServiceGroup, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, p)
			require.Len(t, frags, LinkFragmentCount(n))
			reasm := []byte{}
			for i, l := range frags {
				frame := l.Append(newFrame(TypeLink))
				require.LessOrEqual(t, len(frame), MaxFrame)
				require.Len(t, frame, LinkOverhead+len(l.Chunk))
				got, err := ParseLink(body(t, frame, TypeLink))
				require.NoError(t, err, "fragment %d", i)
				require.Equal(t, l, got)
				reasm = append(reasm, got.Chunk...)
			}
			require.Equal(t, p, reasm)
		})
	}
	t.Run("1 KiB group multicast takes two frames", func(t *testing.T) {
		// 1024 bytes of data in a group envelope (157 bytes) plus the
		// group message byte: the figure docs/BENCHMARKS.md works from.
		require.Equal(t, 2, LinkFragmentCount(1024+157+1))
	})
}

func TestLinkRejects(t *testing.T) {
	mk := func(n, idx int, mod func(*Link)) []byte {
		l := linkFragments(ServiceGroup, [8]byte{9}, payload(n))[idx]
		l.Chunk = bytes.Clone(l.Chunk)
		if mod != nil {
			mod(&l)
		}
		return l.Append(nil)
	}
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"one short of header", mk(0, 0, nil)[:14], ErrShort},
		{"FragCount 0", mk(0, 0, func(l *Link) { l.FragCount = 0 }), ErrMalformed},
		{"FragCount too small", mk(MaxLinkChunk+1, 0, func(l *Link) { l.FragCount = 1 }), ErrMalformed},
		{"FragCount too large", mk(MaxLinkChunk+1, 0, func(l *Link) { l.FragCount = 3 }), ErrMalformed},
		{"FragIndex == FragCount", mk(MaxLinkChunk+1, 1, func(l *Link) { l.FragIndex = 2 }), ErrMalformed},
		{"first chunk short", mk(2*MaxLinkChunk, 0, func(l *Link) { l.Chunk = l.Chunk[1:] }), ErrMalformed},
		{"last chunk long", mk(MaxLinkChunk+5, 1, func(l *Link) { l.Chunk = append(l.Chunk, 0) }), ErrMalformed},
		{"empty message with chunk", mk(0, 0, func(l *Link) { l.Chunk = []byte{1} }), ErrMalformed},
		{"Length MaxMessage+1", mk(0, 0, func(l *Link) { l.Length = MaxMessage + 1 }), ErrLong},
		{"Length 0xFFFFFFFF", mk(0, 0, func(l *Link) { l.Length = 0xFFFFFFFF }), ErrLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLink(tt.body)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestLinkAck(t *testing.T) {
	a := LinkAck{MsgID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	frame := a.Append(newFrame(TypeLinkAck))
	require.Len(t, frame, HeaderLen+8)
	got, err := ParseLinkAck(body(t, frame, TypeLinkAck))
	require.NoError(t, err)
	require.Equal(t, a, got)
	for _, n := range []int{0, 7, 9} {
		_, err := ParseLinkAck(make([]byte, n))
		require.ErrorIs(t, err, ErrMalformed)
	}
}
