package testnet

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

type udpNode struct{ c *net.UDPConn }

func (u udpNode) Close() error { return u.c.Close() }

func startUDP(i int, entries []string) (udpNode, error) {
	if i == 3 {
		return udpNode{}, errors.New("refused")
	}
	a, err := net.ResolveUDPAddr("udp", DistinctLoopbackAddr(i))
	if err != nil {
		return udpNode{}, err
	}
	c, err := net.ListenUDP("udp", a)
	return udpNode{c}, err
}

func TestStartGivesEntriesAndClosesNodes(t *testing.T) {
	CheckLeaks(t)
	var seen [][]string
	start := func(i int, entries []string) (udpNode, error) {
		seen = append(seen, entries)
		return startUDP(i, entries)
	}
	tn := Start(t, 3, start, func(u udpNode) string { return u.c.LocalAddr().String() })
	require.Len(t, tn.Nodes, 3)
	require.Empty(t, seen[0], "the first node starts a network")
	for i := 1; i < 3; i++ {
		require.Len(t, seen[i], 1)
	}
	for i, nd := range tn.Nodes {
		require.Equal(t, fmt.Sprintf("127.0.0.%d", i+2), nd.c.LocalAddr().(*net.UDPAddr).IP.String())
	}
	tn.Close()
	_, err := tn.Nodes[0].c.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestAddConcurrentlyReportsFailuresOnTheTestGoroutine(t *testing.T) {
	ft := &fakeT{TB: t}
	tn := &Net[udpNode]{t: ft, start: startUDP, addr: func(u udpNode) string { return u.c.LocalAddr().String() }}
	defer tn.Close()
	tn.Add()
	func() {
		defer func() { _ = recover() }() // fakeT.Fatalf ends the call like t.Fatalf would
		tn.AddConcurrently(3)            // node 3 is refused
	}()
	require.Contains(t, ft.msg, "node 3: refused")
	require.Len(t, tn.Nodes, 3, "the nodes that started are kept, so that they are closed")
}

type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func (f *fakeT) Helper() {}
