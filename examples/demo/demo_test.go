package main

import "testing"

// TestDemo runs the README's first command in-process: every step of the
// demo (joins behind NATs, messages, streams direct and relayed, groups, the
// DHT) must succeed on the simulated network.
func TestDemo(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
