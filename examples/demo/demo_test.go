package main

import (
	"bytes"
	"testing"

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
