package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
)

// The demo runs to completion and the downloaded file is the shared one.
func TestDemo(t *testing.T) {
	testnet.CheckLeaks(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := runDemo(t.Context(), dir, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	want, err := os.ReadFile(filepath.Join(dir, "shared", "demo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "downloads", "demo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes that differ from the %d shared", len(got), len(want))
	}
	for _, s := range []string{"owners: alice bob", "owners: carol", "OK: SHA-256"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, &stdout)
		}
	}
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no complete progress bar on stderr:\n%q", &stderr)
	}
}

// An owner that serves other bytes than the SHA-256 it published is caught:
// the download fails and leaves no file behind; with an honest owner too,
// the download falls back to it.
func TestCorruptOwner(t *testing.T) {
	testnet.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.bin")
	fake := filepath.Join(dir, "fake.bin")
	writeFile(t, real, bytes.Repeat([]byte("the real content\n"), 1000))
	writeFile(t, fake, bytes.Repeat([]byte("THE FAKE CONTENT\n"), 1000)) // same size

	peers, stop, err := startLocal(ctx, "liar", "honest", "client")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	liar, honest, client := peers[0], peers[1], peers[2]

	// Both publish real.bin; the liar serves fake.bin's bytes under its hash.
	info, err := honest.lib.add(real)
	if err != nil {
		t.Fatal(err)
	}
	liar.lib.files[info.SHA256] = fake
	serveCtx, stopServing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopServing(); wg.Wait() }()
	for _, p := range []*peer{liar, honest} {
		if err := publish(ctx, p.d, []fileInfo{info}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = p.lib.serve(serveCtx, p.n, io.Discard) }) // ends with serveCtx
	}

	versions, err := search(ctx, client.d, "real.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 || len(versions[0]) != 2 {
		t.Fatalf("search found %v, want one version with 2 owners", versions)
	}
	var liarOffer, honestOffer offer
	for _, o := range versions[0] {
		switch o.Owner {
		case liar.n.ID():
			liarOffer = o
		case honest.n.ID():
			honestOffer = o
		}
	}

	// From the liar alone: detected, and nothing left on disk.
	out := filepath.Join(dir, "downloads", "real.bin")
	var progress bytes.Buffer
	_, err = download(ctx, client.n, []offer{liarOffer}, out, &progress)
	if err == nil || !strings.Contains(err.Error(), "SHA-256 mismatch") {
		t.Fatalf("download from the liar: err = %v, want a SHA-256 mismatch", err)
	}
	for _, p := range []string{out, out + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: left behind (stat: %v)", p, err)
		}
	}

	// Liar first, then the honest owner: the download succeeds from the latter.
	from, err := download(ctx, client.n, []offer{liarOffer, honestOffer}, out, &progress)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if from != honest.n.ID() {
		t.Errorf("downloaded from %s, want the honest owner %s", from, honest.n.ID())
	}
	if got, want := readFile(t, out), readFile(t, real); !bytes.Equal(got, want) {
		t.Error("downloaded file differs from the real one")
	}
	if !strings.Contains(progress.String(), "trying the next owner") {
		t.Errorf("progress does not report the failed owner:\n%s", &progress)
	}
}

// Command-line mistakes exit with status 2, and -h with 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"get"}, 2},
		{[]string{"serve"}, 2},
		{[]string{"-nosuchflag"}, 2},
		{[]string{"get", "x", "-nosuchflag"}, 2},
		{[]string{"-demo", "extra"}, 2},
		{[]string{"-h"}, 0},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), tc.args, nil, &bytes.Buffer{}, &stderr)
		if code := exitCode(err, &stderr); code != tc.code {
			t.Errorf("share %v: exit code %d, want %d (err %v)", tc.args, code, tc.code, err)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
