package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/p2psock"
)

// The tests run p2pcat in-process on 127.0.0.1, each in a network of its
// own, with local discovery kept to this machine (no LAN multicast), and
// check that no goroutine is left behind once every p2pcat has exited.

type proc struct {
	t      *testing.T
	cancel context.CancelFunc
	stdout *syncBuffer
	lines  chan string // stderr, line by line
	stderr *syncBuffer
	done   chan int
	errEOF chan struct{} // closed when stderr is fully read
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv gives the test's p2pcat processes a network name and an identity
// directory of their own.
type testEnv struct {
	network string
	dir     string
	k       int
	ids     int // identities handed out from testdata/identities
}

// identity returns the path of an identity file named name in the test's
// directory, holding the next identity of testdata/identities (ground once
// at the default difficulty: grinding one per process costs 0.6 s of a core
// on average and, under the race detector on a loaded machine, sometimes
// more than the tests wait for a node to start). An existing file is kept.
func (e *testEnv) identity(t *testing.T, name string) string {
	path := filepath.Join(e.dir, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	pool, err := filepath.Glob(filepath.Join("testdata", "identities", "*.pem"))
	require.NoError(t, err)
	if e.ids < len(pool) {
		b, err := os.ReadFile(pool[e.ids])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	e.ids++
	return path
}

func newEnv(t *testing.T) *testEnv {
	testnet.CheckLeaks(t)
	t.Setenv("P2PCAT_MACHINE_ONLY", "1")
	t.Setenv("P2PCAT_BOOTSTRAP", "")
	var b [4]byte
	rand.Read(b[:])
	return &testEnv{network: fmt.Sprintf("p2pcat-test-%x", b), dir: t.TempDir()}
}

// start runs p2pcat with args (after the common ones) and stdin, for test t
// (which waits for it to exit at its end).
func (e *testEnv) start(t *testing.T, stdin io.Reader, args ...string) *proc {
	e.k++
	host, _, _ := net.SplitHostPort(testnet.DistinctLoopbackAddr(e.k))
	common := []string{"-n", e.network, "-s", host, "-i", e.identity(t, fmt.Sprintf("id%d", e.k))}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &proc{t: t, cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, lines: make(chan string, 64), done: make(chan int, 1), errEOF: make(chan struct{})}
	go func() {
		defer close(p.errEOF)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = p.stderr.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		code := exitStatus(run(ctx, append(common, args...), stdin, p.stdout, pw), pw)
		pw.Close()
		p.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("p2pcat %v did not stop", args)
		}
	})
	return p
}

// waitLine waits for a stderr line matching re and returns its submatches.
func (p *proc) waitLine(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case code := <-p.done:
			p.done <- code
			p.t.Fatalf("exited with %d before printing /%s/; stderr:\n%s", code, re, p.stderr)
		case <-timeout:
			p.t.Fatalf("no line /%s/ on stderr:\n%s", re, p.stderr)
		}
	}
}

// wait returns the exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case code := <-p.done:
		p.done <- code
		<-p.errEOF
		return code
	case <-time.After(60 * time.Second):
		p.t.Fatalf("p2pcat did not exit; stderr:\n%s", p.stderr)
		return -1
	}
}

// TestStreamFile pipes a file through "p2pcat <ID>" into "p2pcat -l", whose
// own stdin is empty, and checks the bytes arrive intact and both exit 0.
func TestStreamFile(t *testing.T) {
	e := newEnv(t)
	size := 32 << 20
	if testing.Short() {
		size = 4 << 20
	}
	data := make([]byte, size)
	rand.Read(data)
	l := e.start(t, strings.NewReader(""), "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	c := e.start(t, bytes.NewReader(data), id)
	require.Equal(t, 0, c.wait(), c.stderr.String())
	require.Equal(t, 0, l.wait(), l.stderr.String())
	require.Equal(t, sha256.Sum256(data), sha256.Sum256([]byte(l.stdout.String())))
}

// TestStreamBothWays: each side's stdin reaches the other's stdout.
func TestStreamBothWays(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader("from the listener\n"), "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	c := e.start(t, strings.NewReader("from the connector\n"), id)
	require.Equal(t, 0, c.wait(), c.stderr.String())
	require.Equal(t, 0, l.wait(), l.stderr.String())
	require.Equal(t, "from the connector\n", l.stdout.String())
	require.Equal(t, "from the listener\n", c.stdout.String())
}

// TestDatagrams: lines sent with -u to an ID arrive as lines at "-u -l".
func TestDatagrams(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-u", "-l")
	id := l.waitLine(`^listening as (\S+)$`)[1]
	// The sender's 0 says the listener's node took the lines; the
	// listener prints them as it reads them, a moment later.
	s := e.start(t, strings.NewReader("one\ntwo\nthree\n"), "-u", id) // a light client
	require.Equal(t, 0, s.wait(), s.stderr.String())
	testnet.Eventually(t, 20*time.Second, "the lines at the listener", func() bool {
		return l.stdout.String() == "one\ntwo\nthree\n"
	})
	s = e.start(t, strings.NewReader("four\n"), "-full", "-u", id) // a full member
	require.Equal(t, 0, s.wait(), s.stderr.String())
	testnet.Eventually(t, 20*time.Second, "the fourth line at the listener", func() bool {
		return l.stdout.String() == "one\ntwo\nthree\nfour\n"
	})
}

// TestDatagramsByKey: a line sent to @key reaches the node closest to
// KeyOf(key), which prints it, and the sender exits 0. The sender is a
// light client, never the node closest to a key; with -full it could be
// that node (its ID is random: about one run in two), and then nobody else
// gets the line and it fails with status 1.
func TestDatagramsByKey(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-u", "-l")
	l.waitLine(`^listening as`)
	s := e.start(t, strings.NewReader("who keeps the lobby?\n"), "-u", "@room:lobby")
	switch code := s.wait(); code {
	case 0:
		testnet.Eventually(t, 20*time.Second, "the line at the listener", func() bool {
			return l.stdout.String() == "who keeps the lobby?\n"
		})
	case 1:
		require.Contains(t, s.stderr.String(), "this p2pcat is the node closest to the key")
		require.Empty(t, l.stdout.String())
	default:
		t.Fatalf("exit status %d: %s", code, s.stderr.String())
	}
	require.Empty(t, s.stdout.String())
}

// TestGroup: lines one member multicasts are printed by the others with the
// sender's ID; with -any exactly one member gets each line.
func TestGroup(t *testing.T) {
	e := newEnv(t)
	var members []*proc
	for range 3 {
		m := e.start(t, strings.NewReader(""), "-g", "lobby")
		m.waitLine(`^joined lobby as`)
		members = append(members, m)
	}
	sender := e.start(t, strings.NewReader("hello group\nsecond line\n"), "-g", "lobby", "-q", "0s")
	idS := sender.waitLine(`^joined lobby as (\S+)$`)[1]
	require.Equal(t, 0, sender.wait(), sender.stderr.String())
	want := fmt.Sprintf("%s: hello group\n%s: second line\n", idS[:8], idS[:8])
	for _, m := range members {
		require.Eventually(t, func() bool { return m.stdout.String() == want }, 20*time.Second, 10*time.Millisecond,
			"member got %q", m.stdout.String())
	}
	any := e.start(t, strings.NewReader("to one of you\n"), "-g", "lobby", "-any", "-q", "0s")
	require.Equal(t, 0, any.wait(), any.stderr.String())
	require.Eventually(t, func() bool {
		k := 0
		for _, m := range members {
			k += strings.Count(m.stdout.String(), "to one of you")
		}
		return k == 1
	}, 20*time.Second, 10*time.Millisecond)
}

// TestDHT: a value added by one p2pcat is read back by another, while a
// third node keeps the network up.
func TestDHT(t *testing.T) {
	e := newEnv(t)
	anchor := e.start(t, strings.NewReader(""), "-u", "-l")
	anchor.waitLine(`^listening as`)
	add := e.start(t, nil, "dht", "add", "user:alice", "laptop")
	require.Equal(t, 0, add.wait(), add.stderr.String())
	get := e.start(t, nil, "dht", "get", "user:alice")
	require.Equal(t, 0, get.wait(), get.stderr.String())
	require.Equal(t, "laptop\n", get.stdout.String())
}

// TestDoctor: doctor joins the network and reports what it learned: on
// loopback, no NAT, and a node that relays for others.
func TestDoctor(t *testing.T) {
	e := newEnv(t)
	anchor := e.start(t, strings.NewReader(""), "-u", "-l")
	anchor.waitLine(`^listening as`)
	doc := e.start(t, nil, "doctor")
	require.Equal(t, 0, doc.wait(), doc.stderr.String())
	out := doc.stdout.String()
	require.Regexp(t, `(?m)^public: +127\.\d+\.\d+\.\d+:\d+$`, out)
	require.Regexp(t, `(?m)^mapping: +none$`, out)
	require.Regexp(t, `(?m)^nat: +open`, out)
	require.Regexp(t, `(?m)^filtering: +\S+$`, out)
	require.Regexp(t, `(?m)^relaying: +yes`, out)

	doc = e.start(t, nil, "-json", "doctor")
	require.Equal(t, 0, doc.wait(), doc.stderr.String())
	var r struct {
		Public  []string
		NAT     string
		Mapping string
	}
	require.NoError(t, json.Unmarshal([]byte(doc.stdout.String()), &r), doc.stdout.String())
	require.Equal(t, "open", r.NAT)
	require.Equal(t, "none", r.Mapping)
	require.NotEmpty(t, r.Public)
}

// TestErrors: a wrong flag, a bad ID and a missing argument are usage errors
// (exit 2); an ID nobody has is a runtime failure (exit 1); each prints one
// line on stderr.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	ghost, err := p2psock.NewIdentity()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"-x"}, 2, "flag provided but not defined: -x"},
		{"bad ID", []string{"not-an-id"}, 2, `"not-an-id" is not a node ID`},
		{"nothing to do", nil, 2, "nothing to do"},
		{"dht without key", []string{"dht", "get"}, 2, "dht get takes 1 argument"},
		{"bad entry point", []string{"-b", "nowhere", "-l"}, 2, `bad entry point "nowhere"`},
		{"unreachable peer", []string{"-timeout", "3s", ghost.ID().String()}, 1, "no node in the network has that ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.start(t, strings.NewReader(""), tc.args...)
			require.Equal(t, tc.code, p.wait())
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			require.Len(t, lines, 1, p.stderr.String())
			require.True(t, strings.HasPrefix(lines[0], "p2pcat: "), lines[0])
			require.Contains(t, lines[0], tc.msg)
		})
	}
}

// TestHelp prints the manual on stdout with exit 0.
func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, exitStatus(run(context.Background(), []string{"-h"}, nil, &out, &errb), &errb))
	require.Contains(t, out.String(), "EXIT STATUS")
	require.Empty(t, errb.String())
}
