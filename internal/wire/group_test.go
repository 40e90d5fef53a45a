package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testEnvelope is a signed envelope of kind k with data, by the test sender.
func testEnvelope(k byte, data []byte) []byte {
	e := Envelope{Kind: k, Group: id(9), Origin: testSender, MsgID: [16]byte{1, 2, 3}, Timestamp: -5, Data: data}
	u := e.AppendUnsigned(nil)
	return append(u, ed25519.Sign(testPriv, EnvelopeSigned(testNet, u))...)
}

// groupMsgs is one message of every type.
func groupMsgs() []GroupMsg {
	env := testEnvelope(EnvMulticast, []byte("hi"))
	return []GroupMsg{
		{Type: GroupJoin, Group: id(1), Flags: GroupFlagMember},
		{Type: GroupJoin, Group: id(1)},
		{Type: GroupLeave, Group: id(2)},
		{Type: GroupPublish, Envelope: env},
		{Type: GroupData, Envelope: env},
		{Type: GroupAny, Down: 1, Envelope: testEnvelope(EnvAnycast, nil)},
		{Type: GroupAny, Down: 7, Envelope: testEnvelope(EnvAnycast, nil)},
		{Type: GroupAnyResult, MsgID: [16]byte{9, 8, 7}, Status: AnyEmpty},
		{Type: GroupBcast, Height: 0xABCD, Envelope: testEnvelope(EnvBroadcast, []byte("all"))},
		{Type: GroupRoot, Group: id(3)},
		{Type: GroupRedirect, Group: id(4), Target: id(5), Flags: GroupFlagPublic, Addr: addrV4},
		{Type: GroupRedirect, Group: id(4), Target: id(5), Addr: addrV6},
		{Type: GroupRedirect, Group: id(4), Target: id(5), Addr: addrNone},
	}
}

func TestGroupMsg(t *testing.T) {
	sizes := map[byte][]int{ // PROTOCOL §11.3
		GroupJoin: {34}, GroupLeave: {33}, GroupPublish: {158 + 2}, GroupData: {158 + 2}, GroupAny: {159},
		GroupAnyResult: {18}, GroupBcast: {160 + 3}, GroupRoot: {33}, GroupRedirect: {67, 73, 85},
	}
	for _, m := range groupMsgs() {
		t.Run(fmt.Sprintf("type %d", m.Type), func(t *testing.T) {
			b := m.Append(nil)
			require.Contains(t, sizes[m.Type], len(b))
			got, err := ParseGroupMsg(b)
			require.NoError(t, err)
			require.Equal(t, m, got)
			if k := EnvelopeKind(m.Type); k != 0 {
				e, err := OpenEnvelope(got.Envelope, testNet)
				require.NoError(t, err)
				require.Equal(t, k, e.Kind)
			}
		})
	}
	// A Join without its flags byte is one with flags 0.
	short := append([]byte{GroupJoin}, bytes.Repeat([]byte{6}, 32)...)
	m, err := ParseGroupMsg(short)
	require.NoError(t, err)
	require.Equal(t, GroupMsg{Type: GroupJoin, Group: [32]byte(short[1:])}, m)
	require.Equal(t, append(short, 0), m.Append(nil))
	require.Zero(t, EnvelopeKind(GroupJoin))
}

func TestGroupMsgRejects(t *testing.T) {
	k := bytes.Repeat([]byte{1}, 32)
	redirect := cat([]byte{GroupRedirect}, k, k, []byte{1})
	for _, tt := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"type 0", []byte{0}, ErrType},
		{"type 10", cat([]byte{10}, k), ErrType},
		{"join short", cat([]byte{GroupJoin}, k[:31]), ErrMalformed},
		{"join long", cat([]byte{GroupJoin}, k, []byte{1, 2}), ErrMalformed},
		{"join empty", []byte{GroupJoin}, ErrMalformed},
		{"leave with flags", cat([]byte{GroupLeave}, k, []byte{1}), ErrMalformed},
		{"root short", cat([]byte{GroupRoot}, k[:5]), ErrMalformed},
		{"any empty", []byte{GroupAny}, ErrMalformed},
		{"anyresult short", cat([]byte{GroupAnyResult}, k[:16]), ErrMalformed},
		{"anyresult long", cat([]byte{GroupAnyResult}, k[:18]), ErrMalformed},
		{"bcast short", []byte{GroupBcast, 1}, ErrMalformed},
		{"redirect short", redirect[:65], ErrMalformed},
		{"redirect no addr", redirect, ErrMalformed},
		{"redirect bad family", cat(redirect, []byte{5, 1, 2, 3, 4, 0, 1}), ErrMalformed},
		{"redirect truncated addr", cat(redirect, []byte{4, 1, 2, 3}), ErrMalformed},
		{"redirect trailing byte", cat(AppendAddr(bytes.Clone(redirect), addrV4), []byte{0}), ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGroupMsg(tt.b)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestEnvelope(t *testing.T) {
	for _, n := range []int{0, 1, 1000, MaxMessage - EnvOverhead - 1} {
		b := testEnvelope(EnvAnycast, payload(n))
		require.Len(t, b, EnvOverhead+n)
		e, err := OpenEnvelope(b, testNet)
		require.NoError(t, err)
		require.Equal(t, Envelope{Kind: EnvAnycast, Group: id(9), Origin: testSender, MsgID: [16]byte{1, 2, 3},
			Timestamp: -5, Data: payload(n), Sig: b[len(b)-SigLen:]}, e)
		require.Equal(t, b, e.Append(nil))
	}
}

func TestEnvelopeRejects(t *testing.T) {
	good := testEnvelope(EnvMulticast, []byte("hello"))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tt := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"one short of the overhead", good[:EnvOverhead-1], ErrShort},
		{"length too large", mut(func(b []byte) []byte { b[92]++; return b }), ErrMalformed},
		{"length too small", mut(func(b []byte) []byte { b[92]--; return b }), ErrMalformed},
		{"length overflows", mut(func(b []byte) []byte { copy(b[89:93], []byte{0xFF, 0xFF, 0xFF, 0xFF}); return b }), ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"kind 0", mut(func(b []byte) []byte { b[0] = 0; return b }), ErrMalformed},
		{"kind 4", mut(func(b []byte) []byte { b[0] = 4; return b }), ErrMalformed},
		{"data changed", mut(func(b []byte) []byte { b[EnvOverhead-SigLen] ^= 1; return b }), ErrSignature},
		{"timestamp changed", mut(func(b []byte) []byte { b[85] ^= 1; return b }), ErrSignature},
		{"signature changed", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenEnvelope(tt.b, testNet)
			require.ErrorIs(t, err, tt.err)
		})
	}
	// Another network's tag does not verify.
	_, err := OpenEnvelope(good, NetworkTag("other"))
	require.ErrorIs(t, err, ErrSignature)
	// ParseEnvelope does not check the signature.
	bad := mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	_, err = ParseEnvelope(bad)
	require.NoError(t, err)
}

// TestGroupProtocolExample checks the envelope test vector of
// docs/PROTOCOL.md §11.2, byte for byte.
func TestGroupProtocolExample(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
		require.NoError(t, err)
		return b
	}
	privA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	e := Envelope{Kind: EnvMulticast, Group: sha256.Sum256([]byte("chat")), Origin: [32]byte(privA.Public().(ed25519.PublicKey)),
		MsgID: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, Timestamp: 1700000000000, Data: []byte("hi")}
	tag := NetworkTag("p2psock")
	u := e.AppendUnsigned(nil)
	require.Len(t, EnvelopeSigned(tag, u), 120)
	b := append(u, ed25519.Sign(privA, EnvelopeSigned(tag, u))...)
	require.Equal(t, unhex(`01
		31 e0 6f 7d 89 fe b9 9a 0e 6c 0a ff e1 98 74 8c 3b b5 be f5 e3 cc 92 d9 5c b9 e9 96 19 7d 3f c3
		8a 88 e3 dd 74 09 f1 95 fd 52 db 2d 3c ba 5d 72 ca 67 09 bf 1d 94 12 1b f3 74 88 01 b4 0f 6f 5c
		00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
		00 00 01 8b cf e5 68 00
		00 00 00 02
		68 69
		7b 0f 44 56 31 cd db c4 70 63 e1 ed 30 97 78 52 2c 98 51 8c a7 64 84 4e f4 a9 65 d7 d1 6e 65 0a
		cd 84 73 2f 15 f1 9a b8 71 a0 88 4a c2 3c b7 a5 47 37 11 c9 56 56 a6 db 44 25 72 89 46 e8 a0 05`), b)
	got, err := OpenEnvelope(b, tag)
	require.NoError(t, err)
	e.Sig = b[len(b)-SigLen:]
	require.Equal(t, e, got)
	require.Equal(t, append([]byte{GroupPublish}, b...), GroupMsg{Type: GroupPublish, Envelope: b}.Append(nil))
}

func FuzzParseGroupMsg(f *testing.F) {
	for _, m := range groupMsgs() {
		f.Add(m.Append(nil))
	}
	f.Add(append([]byte{GroupJoin}, make([]byte, 32)...))
	f.Add(cat([]byte{GroupRedirect}, make([]byte, 65), []byte{6}, addrMapped.Addr().AsSlice(), []byte{0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseGroupMsg(data)
		if err != nil {
			return
		}
		want := data
		switch {
		case m.Type == GroupJoin && len(data) == 33: // the flags byte is optional
			want = append(bytes.Clone(data), 0)
		case m.Type == GroupRedirect:
			canon, rest := canonAddr(data[66:])
			want = cat(data[:66], canon, rest)
		}
		require.Equal(t, want, m.Append(nil))
		if !bytes.Equal(want, data) {
			m2, err := ParseGroupMsg(want)
			require.NoError(t, err)
			require.Equal(t, m, m2)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	for _, k := range []byte{EnvMulticast, EnvAnycast, EnvBroadcast} {
		f.Add(testEnvelope(k, []byte("data")))
	}
	f.Add(testEnvelope(EnvMulticast, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			_, oerr := OpenEnvelope(data, testNet)
			require.ErrorIs(t, oerr, err)
			return
		}
		require.Len(t, e.Sig, SigLen)
		require.Equal(t, data, e.Append(nil))
		if _, err := OpenEnvelope(data, testNet); err == nil {
			require.True(t, ed25519.Verify(e.Origin[:], EnvelopeSigned(testNet, data[:len(data)-SigLen]), e.Sig))
		} else {
			require.ErrorIs(t, err, ErrSignature)
		}
	})
}
