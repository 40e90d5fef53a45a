package wire

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func testCircuitMsgs() map[string]CircuitMsg {
	var id [32]byte
	id[0], id[31] = 1, 2
	return map[string]CircuitMsg{
		"offer": {Kind: CircuitOffer, Circuit: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Relays: []CircuitRelay{
			{ID: id, Addr: netip.MustParseAddrPort("192.0.2.1:4000")},
			{ID: id, Addr: netip.MustParseAddrPort("[2001:db8::1]:4001")}}},
		"answer": {Kind: CircuitAnswer, Circuit: [8]byte{9}, Peer: id},
		"answer hard": {Kind: CircuitAnswer, Flags: CircuitFlagHardNAT | CircuitFlagAddr, Circuit: [8]byte{9}, Peer: id,
			Addr: netip.MustParseAddrPort("[2001:db8::7]:4100")},
		"offer easy": {Kind: CircuitOffer, Flags: CircuitFlagAddr, Circuit: [8]byte{7}, Relays: []CircuitRelay{
			{ID: id, Addr: netip.MustParseAddrPort("192.0.2.1:4001")}}, Addr: netip.MustParseAddrPort("198.51.100.2:4100")},
		"join":   {Kind: CircuitJoin, Circuit: [8]byte{9}, Peer: id},
		"refuse": {Kind: CircuitRefuse, Reason: CircuitFull, Circuit: [8]byte{9}},
	}
}

func TestCircuitMsg(t *testing.T) {
	for name, m := range testCircuitMsgs() {
		t.Run(name, func(t *testing.T) {
			b, err := AppendCircuitMsg(nil, m)
			require.NoError(t, err)
			got, err := ParseCircuitMsg(b)
			require.NoError(t, err)
			require.Equal(t, m, got)
		})
	}
}

func TestCircuitMsgRejects(t *testing.T) {
	good, err := AppendCircuitMsg(nil, testCircuitMsgs()["offer"])
	require.NoError(t, err)
	mapped := append([]byte(nil), good[:circuitMsgFixed]...)
	mapped[circuitMsgFixed-1] = 1
	mapped = append(mapped, make([]byte, 32)...)
	mapped = append(mapped, 6)
	mapped = append(mapped, netip.MustParseAddr("::ffff:192.0.2.1").AsSlice()...)
	mapped = append(mapped, 0, 1)
	hard, err := AppendCircuitMsg(nil, testCircuitMsgs()["answer hard"])
	require.NoError(t, err)
	noAddr := hard[:circuitMsgFixed] // the flag says an address follows
	tooMany := append([]byte(nil), good[:circuitMsgFixed]...)
	tooMany[circuitMsgFixed-1] = MaxCircuitRelays + 1
	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"short":     {good[:circuitMsgFixed-1], ErrShort},
		"version":   {append([]byte{2}, good[1:]...), ErrVersion},
		"kind":      {cat([]byte{1, 7}, good[2:]), ErrMalformed},
		"kind0":     {cat([]byte{1, 0}, good[2:]), ErrMalformed},
		"truncated": {good[:len(good)-1], ErrShort},
		"trailing":  {cat(good, []byte{0}), ErrMalformed},
		"family":    {cat(good[:circuitMsgFixed+32], []byte{5}, good[circuitMsgFixed+33:]), ErrAddrFamily},
		"mapped":    {mapped, ErrMalformed},
		"too many":  {tooMany, ErrMalformed},
		"no addr":   {noAddr, ErrShort},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCircuitMsg(tc.b)
			require.ErrorIs(t, err, tc.err)
		})
	}
	_, err = AppendCircuitMsg(nil, CircuitMsg{Kind: CircuitAnswer, Flags: CircuitFlagAddr})
	require.ErrorIs(t, err, ErrMalformed, "the flag without an address")
	_, err = AppendCircuitMsg(nil, CircuitMsg{Kind: 9})
	require.ErrorIs(t, err, ErrMalformed)
	_, err = AppendCircuitMsg(nil, CircuitMsg{Kind: CircuitOffer, Relays: make([]CircuitRelay, MaxCircuitRelays+1)})
	require.ErrorIs(t, err, ErrMalformed)
	_, err = AppendCircuitMsg(nil, CircuitMsg{Kind: CircuitOffer, Relays: make([]CircuitRelay, 1)})
	require.ErrorIs(t, err, ErrMalformed, "an invalid address")
}

func TestCircuitFrame(t *testing.T) {
	id := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	f := AppendCircuitFrame(nil, id, []byte("quic"))
	require.Equal(t, CircuitHeaderLen+4, len(f))
	gid, p, err := ParseCircuitFrame(f)
	require.NoError(t, err)
	require.Equal(t, id, gid)
	require.Equal(t, []byte("quic"), p)
	_, _, err = ParseCircuitFrame(f[:CircuitHeaderLen])
	require.ErrorIs(t, err, ErrShort, "no payload")
	_, _, err = ParseCircuitFrame(AppendCircuitFrame(nil, id, make([]byte, MaxCircuitPayload+1)))
	require.ErrorIs(t, err, ErrLong)
	_, _, err = ParseCircuitFrame(append([]byte{0x20}, f[1:]...))
	require.ErrorIs(t, err, ErrType)
}

func FuzzCircuitMsg(f *testing.F) {
	for _, m := range testCircuitMsgs() {
		b, _ := AppendCircuitMsg(nil, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseCircuitMsg(b)
		if err != nil {
			return
		}
		again, err := AppendCircuitMsg(nil, m)
		require.NoError(t, err)
		require.True(t, bytes.Equal(b, again), "not canonical")
	})
}

func FuzzCircuitFrame(f *testing.F) {
	f.Add(AppendCircuitFrame(nil, [8]byte{1}, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, err := ParseCircuitFrame(b)
		if err != nil {
			return
		}
		require.Equal(t, b, AppendCircuitFrame(nil, id, p))
	})
}
