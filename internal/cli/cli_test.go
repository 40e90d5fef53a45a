package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/p2psock"
)

func TestExitStatus(t *testing.T) {
	p := Program{Name: "prog", Hint: " (see prog -h)", Usage: "usage: prog [flags]\n"}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		stderr string
	}{
		{"success", nil, ExitOK, ""},
		{"help", flag.ErrHelp, ExitOK, ""},
		{"usage", Usage("no command"), ExitUsage, "prog: no command (see prog -h)\nusage: prog [flags]\n"},
		{"usage wrapped", fmt.Errorf("parsing: %w", Usagef("bad port %d", 70000)), ExitUsage, "prog: bad port 70000 (see prog -h)\nusage: prog [flags]\n"},
		{"usage reported", UsageError{Msg: "flag provided but not defined: -x", Reported: true}, ExitUsage, ""},
		{"failure", errors.New("no route"), ExitFailure, "prog: no route\n"},
		{"SIGINT", Interrupted{Signal: syscall.SIGINT}, 130, ""},
		{"SIGTERM", fmt.Errorf("stopping: %w", Interrupted{Signal: syscall.SIGTERM}), 143, ""},
		{"failure on lines", errors.Join(errors.New("first"), errors.New("second")), ExitFailure, "prog: first; second\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tc.status, p.ExitStatus(tc.err, &stderr))
			require.Equal(t, tc.stderr, stderr.String())
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		stderr   bool // the flag set reports on stderr
		pos      []string
		o        string
		err      error
		reported bool
	}{
		{"flags first", []string{"-o", "out", "a", "b"}, true, []string{"a", "b"}, "out", nil, false},
		{"flags after", []string{"a", "-o", "out", "b"}, true, []string{"a", "b"}, "out", nil, false},
		{"dash dash", []string{"a", "--", "-o"}, true, []string{"a", "-o"}, "", nil, false},
		{"none", nil, true, nil, "", nil, false},
		{"help", []string{"a", "-h"}, true, nil, "", flag.ErrHelp, false},
		{"bad flag, reported", []string{"a", "-x"}, true, nil, "", UsageError{}, true},
		{"bad flag, for the program to report", []string{"a", "-x"}, false, nil, "", UsageError{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			fs := NewFlagSet("prog", "usage: prog\n", &stderr)
			if !tc.stderr {
				fs = NewFlagSet("prog", "usage: prog\n", nil)
			}
			o := fs.String("o", "", "output")
			pos, err := ParseInterspersed(fs, tc.args)
			var ue UsageError
			switch {
			case errors.As(tc.err, &ue):
				require.ErrorAs(t, err, &ue)
				require.Equal(t, "flag provided but not defined: -x", ue.Msg)
				require.Equal(t, tc.reported, ue.Reported)
				require.Equal(t, tc.reported, stderr.Len() > 0, "stderr: %q", stderr.String())
				return
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.pos, pos)
			require.Equal(t, tc.o, *o)
			require.Empty(t, stderr.String())
		})
	}
}

func TestGlobalFlags(t *testing.T) {
	var stderr bytes.Buffer
	fs := NewFlagSet("prog", "", &stderr)
	options := GlobalFlags(fs, "prog-net", &stderr)
	require.NoError(t, Parse(fs, []string{"-bootstrap", "a:1,b:2", "-listen", "127.0.0.1:0", "-v"}))
	o := options()
	require.Equal(t, "prog-net", o.Network)
	require.Equal(t, []string{"a:1", "b:2"}, o.Bootstrap)
	require.Equal(t, "127.0.0.1:0", o.Listen)
	require.NotNil(t, o.Logger)
	require.True(t, o.Logger.Enabled(context.Background(), slog.LevelDebug))
}

func TestNewLogger(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, NewLogger(&bytes.Buffer{}, 0))
	info := NewLogger(&bytes.Buffer{}, 1)
	require.True(t, info.Enabled(ctx, slog.LevelInfo))
	require.False(t, info.Enabled(ctx, slog.LevelDebug))
	require.True(t, NewLogger(&bytes.Buffer{}, 2).Enabled(ctx, slog.LevelDebug))
}

func TestOptionsConfig(t *testing.T) {
	id, err := p2psock.NewIdentity()
	require.NoError(t, err)
	o := Options{Network: "n", Bootstrap: []string{"a:1"}, JoinOnly: true, Listen: "127.0.0.1:0", MachineOnly: true,
		Relays: []string{"turn://u:p@h:3478"}, ForceRelay: true}
	require.Equal(t, p2psock.Config{Identity: id, Network: "n", Bootstrap: []string{"a:1"}, JoinOnly: true, ListenAddr: "127.0.0.1:0",
		LocalDiscovery: true, MachineOnlyDiscovery: true, Relays: []string{"turn://u:p@h:3478"}, ForceRelay: true}, o.Config(id))
}

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	path, err := IdentityFile("", "app", "id.key")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "app", "id.key"), path)
	path, err = IdentityFile("/given", "app", "id.key")
	require.NoError(t, err)
	require.Equal(t, "/given", path)

	id, err := LoadIdentity("", "app", "id.key") // created
	require.NoError(t, err)
	again, err := LoadIdentity(filepath.Join(dir, "app", "id.key"), "other", "other.key")
	require.NoError(t, err)
	require.Equal(t, id.ID(), again.ID())

	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	_, err = IdentityFile("", "app", "id.key")
	require.ErrorContains(t, err, "no identity file (-i) and no config directory")
}

func TestStartNode(t *testing.T) {
	testnet.CheckLeaks(t)
	network := fmt.Sprintf("cli-test-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	n, d, err := StartNode(ctx, p2psock.Config{ListenAddr: testnet.LoopbackAddr(0), Network: network}, dht.Config{})
	require.NoError(t, err)
	require.NotNil(t, d)
	require.NotZero(t, n.UDPAddr().Port)
	require.NoError(t, d.Close())
	require.NoError(t, n.Close())

	// A node that cannot join is closed, with its DHT.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // an entry point that never answers
	require.NoError(t, err)
	defer dead.Close()
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, _, err = StartNode(bctx, p2psock.Config{ListenAddr: testnet.LoopbackAddr(0), Network: network,
		Bootstrap: []string{dead.LocalAddr().String()}, JoinOnly: true}, dht.Config{})
	require.ErrorContains(t, err, "joining the network")

	_, _, err = StartNode(ctx, p2psock.Config{ListenAddr: "no such address"}, dht.Config{})
	require.Error(t, err)
}

func TestInterruptedBy(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	require.NoError(t, InterruptedBy(ctx))
	cancel(Interrupted{Signal: syscall.SIGTERM})
	require.Equal(t, Interrupted{Signal: syscall.SIGTERM}, InterruptedBy(ctx))
	plain, stop := context.WithCancel(context.Background())
	stop()
	require.Equal(t, Interrupted{Signal: syscall.SIGINT}, InterruptedBy(plain))
}
