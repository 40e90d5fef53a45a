package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
)

// The demo runs to the end, and every participant saw what it should.
func TestDemo(t *testing.T) {
	testnet.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*demoTimeout)
	defer cancel()
	var out, errs bytes.Buffer
	if err := run(ctx, []string{"-demo"}, strings.NewReader(""), &out, &errs); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errs.String())
	}
	t.Logf("demo output:\n%s", out.String())

	// screen returns what a participant's screen showed.
	screen := func(nick string) string {
		var b strings.Builder
		for l := range strings.Lines(out.String()) {
			if rest, ok := strings.CutPrefix(l, fmt.Sprintf("%-5s │ ", nick)); ok {
				b.WriteString(rest)
			}
		}
		return b.String()
	}
	saw := map[string][]string{
		"alice": {
			`* bob accepted your invitation to "standup"`,
			`* dave declined your invitation to "standup": on holiday, sorry`,
			"* bob joined",
			"bob: Yesterday I fixed the flaky test; today the release notes.",
			"* carol joined",
			"carol: Sorry I'm late. Nothing blocks me.",
			`* you left "standup"`,
		},
		"bob": {
			`* alice invites you to "standup" (Yesterday, today, blockers), starting now; invited: bob, carol, dave.`,
			"alice: Morning! Let's start.",
			"* carol joined",
			"carol: Sorry I'm late. Nothing blocks me.",
			"alice: I have to go, carry on without me.",
			"* alice left",
			"carol: Sure, let's.",
		},
		"carol": {
			`* alice invites you to "standup"`,
			// carol joined late: the DHT told her who was there.
			`* you are in "standup"; here: alice, bob, carol (you)`,
			"alice: I have to go, carry on without me.",
			"* alice left",
			// alice's leaving took her out of the DHT.
			"* here: bob, carol (you)",
			"bob: Carol, shall we go through the release notes?",
			"* bob left",
		},
		"dave": {
			`* alice invites you to "standup"`,
		},
	}
	for nick, lines := range saw {
		s := screen(nick)
		for _, l := range lines {
			if !strings.Contains(s, l) {
				t.Errorf("%s did not see %q", nick, l)
			}
		}
	}
	// dave declined: he heard nothing of the conference.
	if s := screen("dave"); strings.Contains(s, "alice: ") {
		t.Errorf("dave, who declined, heard the conference:\n%s", s)
	}
}

// Two people at two terminals on this machine find each other with no
// flags but their names, and talk.
func TestTwoTerminals(t *testing.T) {
	testnet.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	network := fmt.Sprintf("chat-test-%08x", rand.Uint32())
	type user struct {
		in   *io.PipeWriter
		out  *watcher
		done chan error
	}
	start := func(nick string) *user {
		r, w := io.Pipe()
		t.Cleanup(func() { w.Close() }) // ends chat's reading of its input
		u := &user{in: w, out: newWatcher(), done: make(chan error, 1)}
		args := []string{"-name", nick, "-i", filepath.Join(dir, nick+".key"), "-listen", "127.0.0.1:0", "-network", network, "-machine-only"}
		go func() { u.done <- run(ctx, args, r, u.out, io.Discard) }()
		return u
	}
	alice := start("alice")
	alice.out.wait(t, ctx, "* you are alice")
	bob := start("bob")
	bob.out.wait(t, ctx, "* you are bob")

	fmt.Fprintln(alice.in, "/create pair now bob Pairing on the parser")
	bob.out.wait(t, ctx, `alice invites you to "pair" (Pairing on the parser)`)
	fmt.Fprintln(bob.in, "/accept")
	bob.out.wait(t, ctx, `here: alice, bob (you)`)
	alice.out.wait(t, ctx, "* bob joined")
	fmt.Fprintln(bob.in, "hello alice")
	alice.out.wait(t, ctx, "bob: hello alice")
	fmt.Fprintln(alice.in, "hi bob")
	bob.out.wait(t, ctx, "alice: hi bob")

	fmt.Fprintln(bob.in, "/quit")
	if err := <-bob.done; err != nil {
		t.Errorf("bob: %v", err)
	}
	alice.out.wait(t, ctx, "* bob left")
	alice.in.Close() // end of input quits too
	if err := <-alice.done; err != nil {
		t.Errorf("alice: %v", err)
	}
}

// watcher is an io.Writer that lets a test wait for some output.
type watcher struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{} // closed, and replaced, on every write
}

func newWatcher() *watcher { return &watcher{changed: make(chan struct{})} }

func (w *watcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(b), nil
}

func (w *watcher) wait(t *testing.T, ctx context.Context, s string) {
	t.Helper()
	for {
		w.mu.Lock()
		out, changed := w.buf.String(), w.changed
		w.mu.Unlock()
		if strings.Contains(out, s) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("never saw %q in:\n%s", s, out)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, bad := range []string{
		``, `[]`, `{"type":"said"}`, `{"type":"shout","nick":"bob"}`, `{"type":"said","nick":"b o b"}`,
		`{"type":"invite","nick":"alice"}`, `{"type":"invite","nick":"alice","conference":{"name":""}}`,
		`{"type":"accept","nick":"bob"}`,
	} {
		if m, err := decode([]byte(bad)); err == nil {
			t.Errorf("decode(%s) = %+v, want an error", bad, m)
		}
	}
	c := &Conference{Name: "standup", Topic: "t", Start: time.Unix(1e9, 0).UTC(), Nick: "alice", Invitees: []Invitee{{Nick: "bob"}}}
	m, err := decode(encode(message{Type: typeInvite, Nick: "alice", Conference: c}))
	if err != nil || m.Conference == nil || m.Conference.Group() != c.Group() || !m.Conference.Start.Equal(c.Start) || len(m.Conference.Invitees) != 1 {
		t.Errorf("invitation round trip: %+v, %v", m.Conference, err)
	}
}

func TestParseStart(t *testing.T) {
	now := time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"+90m":                 now.Add(90 * time.Minute),
		"14:05":                time.Date(2025, 3, 4, 14, 5, 0, 0, time.UTC),
		"2025-03-05T10:00:00Z": time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC),
	} {
		if got, err := parseStart(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseStart(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseStart("tomorrow", now); err == nil {
		t.Error("parseStart(tomorrow) did not fail")
	}
}
