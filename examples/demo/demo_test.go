package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/internal/testnet"
)

// TestDemo runs the README's first command in-process: every step of the
// demo (joins behind NATs, messages, streams direct and relayed, groups, the
// DHT) must succeed on the simulated network.
func TestDemo(t *testing.T) {
	testnet.CheckLeaks(t)
	var out, errs bytes.Buffer
	if err := run(t.Context(), nil, &out, &errs); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, &out, &errs)
	}
}

// Command-line mistakes exit with status 2, and -h with 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"unknown flag", []string{"-nosuchflag"}, cli.ExitUsage},
		{"argument", []string{"extra"}, cli.ExitUsage},
		{"help", []string{"-h"}, cli.ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), tc.args, &bytes.Buffer{}, &stderr)
			if code := exitCode(err, &stderr); code != tc.code {
				t.Errorf("demo %v: exit status %d, want %d (err %v)", tc.args, code, tc.code, err)
			}
		})
	}
}

// TestDemoView: with -view, every node serves its page, and the demo keeps
// the network up until interrupted.
func TestDemoView(t *testing.T) {
	testnet.CheckLeaks(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-view"}, out, io.Discard) }()
	var url string
	testnet.Eventually(t, 2*time.Minute, "the list of view pages", func() bool {
		m := regexp.MustCompile(`n06 \S+\s+(http://\S+/)`).FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	resp, err := http.Get(url + "api/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Node struct{ NAT string } }
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Node.NAT, "symmetric") {
		t.Errorf("n06 is behind a symmetric NAT; its page says %q", s.Node.NAT)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
