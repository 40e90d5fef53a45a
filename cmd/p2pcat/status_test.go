package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/nat"
)

// oneLine checks that p wrote exactly one line on stderr, "p2pcat: ...",
// containing msg, with no library internals in it.
func oneLine(t *testing.T, p *proc, msg string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	require.Len(t, lines, 1, p.stderr.String())
	require.True(t, strings.HasPrefix(lines[0], "p2pcat: "), lines[0])
	require.Contains(t, lines[0], msg)
	require.NotContains(t, lines[0], "quic")
	require.NotContains(t, lines[0], "error code")
	require.Less(t, len(lines[0]), 160, lines[0])
}

// openStdin returns a stdin that stays open until the test closes it (or
// ends).
func openStdin(t *testing.T) (io.Reader, *io.PipeWriter) {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return r, w
}

// TestBusyListener: while a one-shot -l serves one stream, a second sender
// is refused and fails with status 1 and one line; the first stream still
// completes, and both of its ends exit 0.
func TestBusyListener(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	in1, w1 := openStdin(t)
	first := e.start(t, in1, id)
	_, err := io.WriteString(w1, "first\n")
	require.NoError(t, err)
	testnet.Eventually(t, 20*time.Second, "the first stream's bytes", func() bool { return l.stdout.String() == "first\n" })
	data := make([]byte, 1<<20)
	rand.Read(data)
	second := e.start(t, bytes.NewReader(data), id)
	require.Equal(t, 1, second.wait(), second.stderr.String())
	oneLine(t, second, "refused")
	w1.Close()
	require.Equal(t, 0, first.wait(), first.stderr.String())
	require.Equal(t, 0, l.wait(), l.stderr.String())
	require.Equal(t, "first\n", l.stdout.String())
}

// TestKeepConcurrent: -l -k serves two streams at once: each sender's bytes
// reach stdout while the other stream is still open.
func TestKeepConcurrent(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-l", "-k")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	in1, w1 := openStdin(t)
	in2, w2 := openStdin(t)
	a := e.start(t, in1, id)
	b := e.start(t, in2, id)
	_, err := io.WriteString(w1, "from a\n")
	require.NoError(t, err)
	_, err = io.WriteString(w2, "from b\n")
	require.NoError(t, err)
	testnet.Eventually(t, 30*time.Second, "both streams' bytes", func() bool {
		out := l.stdout.String()
		return strings.Contains(out, "from a\n") && strings.Contains(out, "from b\n")
	})
	w1.Close()
	w2.Close()
	require.Equal(t, 0, a.wait(), a.stderr.String())
	require.Equal(t, 0, b.wait(), b.stderr.String())
}

// TestStreamToNodeWithoutListener: a stream to a node that takes no
// streams (here "-u -l") is refused at once: status 1, one line, instead
// of waiting for ever.
func TestStreamToNodeWithoutListener(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-u", "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	for _, input := range []string{"hello\n", ""} {
		s := e.start(t, strings.NewReader(input), id)
		require.Equal(t, 1, s.wait(), s.stderr.String())
		oneLine(t, s, "refused")
	}
}

// TestDatagramByKeyToItself: a one-shot -u @key sender alone in its
// network is the node closest to the key: nobody else got the message, so
// it fails.
func TestDatagramByKeyToItself(t *testing.T) {
	e := newEnv(t)
	s := e.start(t, strings.NewReader("anyone?\n"), "-u", "@room:empty")
	require.Equal(t, 1, s.wait(), s.stderr.String())
	oneLine(t, s, "no other node got the message")
	require.Empty(t, s.stdout.String())
}

// TestDatagramLineLimit: a line of exactly 65536 bytes is one message; one
// byte more fails with status 1.
func TestDatagramLineLimit(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-u", "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	max := strings.Repeat("x", 65536)
	s := e.start(t, strings.NewReader(max+"\n"), "-u", id)
	require.Equal(t, 0, s.wait(), s.stderr.String())
	testnet.Eventually(t, 20*time.Second, "the 64 KiB line", func() bool { return l.stdout.String() == max+"\n" })
	s = e.start(t, strings.NewReader(max+"y\n"), "-u", id)
	require.Equal(t, 1, s.wait(), s.stderr.String())
	oneLine(t, s, "line 1 is longer than 65536 bytes")
}

// TestDHTStatuses: dht add with no other node, get of a missing key and rm
// of a value this node does not have fail; rm while another p2pcat holds
// the identity fails instead of using another identity; rm of a value
// that is there succeeds.
func TestDHTStatuses(t *testing.T) {
	e := newEnv(t)
	add := e.start(t, nil, "dht", "add", "user:alice", "laptop")
	require.Equal(t, 1, add.wait(), add.stderr.String())
	oneLine(t, add, "no other node in the network to keep the value")

	anchor := e.start(t, strings.NewReader(""), "-u", "-l")
	anchor.waitLine(`^listening as`)
	get := e.start(t, nil, "dht", "get", "user:nobody")
	require.Equal(t, 1, get.wait(), get.stderr.String())
	oneLine(t, get, `nothing under "user:nobody"`)

	idFile := e.identity(t, "owner")
	add = e.start(t, nil, "dht", "add", "user:bob", "desk", "-i", idFile)
	require.Equal(t, 0, add.wait(), add.stderr.String())
	rm := e.start(t, nil, "dht", "rm", "user:bob", "phone", "-i", idFile)
	require.Equal(t, 1, rm.wait(), rm.stderr.String())
	oneLine(t, rm, `this node has no value "phone"`)

	in, w := openStdin(t)
	holder := e.start(t, in, "-g", "x", "-i", idFile)
	holder.waitLine(`^joined x`)
	rm = e.start(t, nil, "dht", "rm", "user:bob", "desk", "-i", idFile)
	require.Equal(t, 1, rm.wait(), rm.stderr.String())
	oneLine(t, rm, "is in use by another p2pcat")
	w.Close()
	holder.cancel()
	holder.wait()

	rm = e.start(t, nil, "dht", "rm", "user:bob", "desk", "-i", idFile)
	require.Equal(t, 0, rm.wait(), rm.stderr.String())
}

// TestDeadEntryPoint: -b with an entry point that never answers fails
// (status 1) instead of starting a network of its own.
func TestDeadEntryPoint(t *testing.T) {
	e := newEnv(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer dead.Close()
	p := e.start(t, strings.NewReader(""), "-l", "-timeout", "3s", "-b", dead.LocalAddr().String())
	require.Equal(t, 1, p.wait(), p.stderr.String())
	oneLine(t, p, "joining the network through -b")
	require.NotContains(t, p.stderr.String(), "listening as")
}

// TestUsage: the usage errors the manual promises, and help, version.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // stdout contains
		msg  string // stderr contains
	}{
		{[]string{"-u"}, 2, "", "-u needs one destination"},
		{[]string{"help"}, 0, "EXIT STATUS", ""},
		{[]string{"-version"}, 0, "p2pcat ", ""},
		{[]string{"version"}, 0, "p2pcat ", ""},
		{[]string{"-h"}, 0, "239.255.80.80", ""},
		{[]string{"-relay", "stun:x", "-l"}, 2, "", "bad relay"},
		{[]string{"serve", "now"}, 2, "", "serve takes no argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := exitStatus(run(context.Background(), tc.args, nil, &out, &errb), &errb)
			require.Equal(t, tc.code, code, errb.String())
			require.Contains(t, out.String(), tc.out)
			require.Contains(t, errb.String(), tc.msg)
		})
	}
}

// TestWrongRelayPassword: a sender that must go through a relay
// (-force-relay) named with a wrong password fails with status 1 and one
// line that says the relay refused the credentials, not only that no path
// was found. The relay is a real TURN server (nat.NewRelay) on loopback.
func TestWrongRelayPassword(t *testing.T) {
	e := newEnv(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	relay, err := nat.NewRelay(nat.RelayConfig{PacketConn: pc})
	require.NoError(t, err)
	t.Cleanup(func() { relay.Close() })
	user, pass := relay.Credentials(time.Hour)
	wrong := (&url.URL{Scheme: "turn", User: url.UserPassword(user, pass+"x"), Host: pc.LocalAddr().String()}).String()
	l := e.start(t, strings.NewReader(""), "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	s := e.start(t, strings.NewReader("via the relay\n"), "-force-relay", "-relay", wrong, id)
	require.Equal(t, 1, s.wait(), s.stderr.String())
	oneLine(t, s, "relay")
	t.Log(s.stderr.String())
}

// waitWithin returns p's exit status if it exits within d, and fails the
// test otherwise (d is well below QUIC's 30 s idle timeout where a test
// checks that p noticed something other than silence).
func waitWithin(t *testing.T, p *proc, d time.Duration, what string) int {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code
		<-p.errEOF
		return code
	case <-time.After(d):
		t.Fatalf("p2pcat did not exit within %v after %s; stderr:\n%s", d, what, p.stderr)
		return -1
	}
}

// TestPeerLeavesStdinOpen: once the peer has sent its end and then left
// (interrupted: its node leaves the network), a p2pcat whose stdin is still
// open stops at once instead of at the end of its stdin: with status 0 if
// it sent nothing (the -l side here), with 1 and one line if it had sent
// something the peer may not have read (the connecting side).
func TestPeerLeavesStdinOpen(t *testing.T) {
	t.Run("listener", func(t *testing.T) {
		e := newEnv(t)
		lin, _ := openStdin(t)
		l := e.start(t, lin, "-l")
		id := l.waitLine(`^listening as (\S+)$`)[1]
		cin, cw := openStdin(t)
		c := e.start(t, cin, id)
		_, err := io.WriteString(cw, "hi\n")
		require.NoError(t, err)
		cw.Close() // the connecting side sends its end...
		testnet.Eventually(t, 20*time.Second, "the listener got the bytes", func() bool { return l.stdout.String() == "hi\n" })
		c.cancel() // ...and is interrupted while waiting for the listener's
		require.Equal(t, 0, waitWithin(t, l, 10*time.Second, "the peer left"), l.stderr.String())
	})
	t.Run("connector", func(t *testing.T) {
		e := newEnv(t)
		l := e.start(t, strings.NewReader("bye\n"), "-l") // sends its end at once
		id := l.waitLine(`^listening as (\S+)$`)[1]
		cin, cw := openStdin(t)
		c := e.start(t, cin, id)
		_, err := io.WriteString(cw, "hi\n")
		require.NoError(t, err)
		testnet.Eventually(t, 20*time.Second, "both got the bytes", func() bool {
			return l.stdout.String() == "hi\n" && c.stdout.String() == "bye\n"
		})
		l.cancel() // the listener is interrupted; the connector's stdin stays open
		require.Equal(t, 1, waitWithin(t, c, 10*time.Second, "the peer left"), c.stderr.String())
		oneLine(t, c, "the peer left before the end of the input")
	})
}
