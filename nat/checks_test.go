package nat

import (
	"net"
	"testing"

	"github.com/pion/stun"
	"github.com/stretchr/testify/require"
)

// TestCheckBudget: checks to an address that sent nothing stop after the
// allowance; what the address sends earns further checks, byte for byte.
func TestCheckBudget(t *testing.T) {
	b := newCheckBudget()
	victim := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4000}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4001} // same IP, same budget
	require.True(t, b.allow(victim, make([]byte, 120)))
	require.True(t, b.allow(other, make([]byte, 120)))
	require.False(t, b.allow(victim, make([]byte, 120)), "past the allowance")
	require.EqualValues(t, 1, b.throttled())
	b.received(victim, make([]byte, 100))
	require.True(t, b.allow(victim, make([]byte, 110)))
	require.False(t, b.allow(victim, make([]byte, 110)))
	require.True(t, b.allow(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 10), Port: 1}, make([]byte, 120)), "another address has its own")
}

// TestCheckBudgetAnswered: an address that answers one of the checks sent
// to it (the response carries the check's transaction ID) gets the full
// credit, so that checks to its silent ports (a NAT that maps per
// destination) cannot starve the pair that works; a success response with
// a transaction ID never sent there (a spoofer's) earns only its bytes.
func TestCheckBudgetAnswered(t *testing.T) {
	b := newCheckBudget()
	nat := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4000}
	silent := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 4001}
	check := func() *stun.Message {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
		require.NoError(t, err)
		return m
	}
	answer := func(req *stun.Message) []byte {
		m, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess, stun.Fingerprint)
		require.NoError(t, err)
		return m.Raw
	}

	spoofed := answer(check()) // answers a check never sent
	c := check()
	require.True(t, b.allow(nat, c.Raw))
	b.received(nat, spoofed)
	sent := 0
	for b.allow(silent, check().Raw) {
		sent++
	}
	require.Less(t, sent, 10, "a spoofed answer earned more than its bytes")

	c = check()
	b.received(nat, make([]byte, len(c.Raw)))
	require.True(t, b.allow(nat, c.Raw))
	b.received(nat, answer(c))
	for range 200 { // checks to the silent port: the answer earned them
		require.True(t, b.allow(silent, check().Raw))
	}
}

// TestIsCheck: binding requests with USERNAME are checks; plain STUN
// queries, responses and junk are not.
func TestIsCheck(t *testing.T) {
	check, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
	require.NoError(t, err)
	query, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	require.NoError(t, err)
	resp, err := stun.Build(stun.TransactionID, stun.BindingSuccess, stun.NewUsername("a:b"))
	require.NoError(t, err)
	require.True(t, isCheck(check.Raw))
	require.False(t, isCheck(query.Raw))
	require.False(t, isCheck(resp.Raw))
	require.False(t, isCheck([]byte{0, 1}))
}

// FuzzIsCheck: isCheck never panics, and agrees with pion's decoder on
// what it accepts.
func FuzzIsCheck(f *testing.F) {
	check, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
	f.Add(check.Raw)
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		if !isCheck(p) {
			return
		}
		m := &stun.Message{Raw: append([]byte(nil), p...)}
		if m.Decode() == nil {
			require.Equal(t, stun.BindingRequest, m.Type)
		}
	})
}
