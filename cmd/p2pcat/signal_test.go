package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The signal tests build p2pcat and run it as a real process, since a
// signal is delivered to a process: SIGTERM and SIGINT must end every mode
// promptly with status 143 and 130.

// binEnv runs the p2pcat binary in a network of its own.
type binEnv struct {
	t       *testing.T
	bin     string
	dir     string
	network string
	k       int
}

func newBinEnv(t *testing.T) *binEnv {
	if testing.Short() {
		t.Skip("builds p2pcat")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "p2pcat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	var b [4]byte
	rand.Read(b[:])
	return &binEnv{t: t, bin: bin, dir: dir, network: fmt.Sprintf("p2pcat-sig-%x", b)}
}

// binProc is a running p2pcat process.
type binProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *syncBuffer
	stderr *syncBuffer
	lines  chan string
	done   chan struct{}
}

func (e *binEnv) start(args ...string) *binProc {
	e.t.Helper()
	e.k++
	common := []string{"-n", e.network, "-s", fmt.Sprintf("127.0.1.%d", e.k+1), "-i", filepath.Join(e.dir, fmt.Sprintf("id%d", e.k))}
	cmd := exec.Command(e.bin, append(common, args...)...)
	cmd.Env = append(os.Environ(), "P2PCAT_MACHINE_ONLY=1", "P2PCAT_BOOTSTRAP=", "TMPDIR="+e.dir)
	p := &binProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stdout = p.stdout
	var err error
	p.stdin, err = cmd.StdinPipe()
	require.NoError(e.t, err)
	errPipe, err := cmd.StderrPipe()
	require.NoError(e.t, err)
	require.NoError(e.t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			_, _ = p.stderr.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.stdin.Close()
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// debugLog are the flags that make a p2pcat log its node's debug messages
// on stderr: a failure's output then shows what the processes did.
var debugLog = []string{"-v", "-v"}

// waitLine waits for a stderr line matching re and returns its submatches.
func (p *binProc) waitLine(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-p.done:
			t.Fatalf("exited before printing /%s/; stderr:\n%s", re, p.stderr)
		case <-timeout:
			t.Fatalf("no line /%s/ on stderr:\n%s", re, p.stderr)
		}
	}
}

// exit waits for the process to exit and returns its status (-1 if a
// signal killed it).
func (p *binProc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		// Its goroutines say what it waits on.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		t.Fatalf("still running %v later; stderr:\n%s", within, p.stderr)
		return 0
	}
}

// signalWithin is how long a signalled p2pcat may take to exit in these
// tests: far more than it needs (it exits regardless after stopGrace), so
// that a loaded machine does not fail them.
const signalWithin = 10 * time.Second

// TestSignals: SIGTERM ends the modes that wait on stdin, on the network or
// on a peer with status 143, SIGINT with 130, SIGHUP with 129; a stream
// interrupted so is half-closed, and its peer gets what was sent.
func TestSignals(t *testing.T) {
	e := newBinEnv(t)

	t.Run("group member waiting on stdin", func(t *testing.T) {
		g := e.start("-g", "chat")
		g.waitLine(t, `^joined chat as`)
		require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 143, g.exit(t, signalWithin), g.stderr.String())
	})

	t.Run("datagram listener, SIGINT", func(t *testing.T) {
		l := e.start("-u", "-l")
		l.waitLine(t, `^listening as`)
		require.NoError(t, l.cmd.Process.Signal(syscall.SIGINT))
		require.Equal(t, 130, l.exit(t, signalWithin), l.stderr.String())
	})

	t.Run("serve", func(t *testing.T) {
		s := e.start("serve", "-p", "0", "-relay-port", "0")
		require.Eventually(t, func() bool { return bytes.Contains([]byte(s.stdout.String()), []byte("serving as")) },
			30*time.Second, 10*time.Millisecond, s.stderr.String())
		require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 143, s.exit(t, signalWithin), s.stderr.String())
	})

	t.Run("stream and datagram senders waiting on stdin", func(t *testing.T) {
		l := e.start("-l")
		id := l.waitLine(t, `^listening as (\S+)$`)[1]
		c := e.start(id)
		_, err := io.WriteString(c.stdin, "sent before the signal\n")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return l.stdout.String() == "sent before the signal\n" },
			30*time.Second, 10*time.Millisecond, l.stderr.String())
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 143, c.exit(t, signalWithin), c.stderr.String())
		// The stream was half-closed: the listener read its end, and
		// finishes once its own stdin ends.
		l.stdin.Close()
		require.Equal(t, 0, l.exit(t, signalWithin), l.stderr.String())

		d := e.start("-u", "-l")
		did := d.waitLine(t, `^listening as (\S+)$`)[1]
		u := e.start("-u", did)
		_, err = io.WriteString(u.stdin, "one datagram\n")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return d.stdout.String() == "one datagram\n" },
			30*time.Second, 10*time.Millisecond, d.stderr.String())
		require.NoError(t, u.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 143, u.exit(t, signalWithin), u.stderr.String())
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 143, d.exit(t, signalWithin), d.stderr.String())
	})

	// ssh ends its ProxyCommand with SIGHUP: p2pcat stops as cleanly as on
	// SIGTERM (status 129), so that its peer learns at once that it left,
	// rather than after QUIC's idle timeout (30 s, more than signalWithin).
	t.Run("stream sender, SIGHUP", func(t *testing.T) {
		l := e.start(append(debugLog, "-l")...)
		id := l.waitLine(t, `^listening as (\S+)$`)[1]
		c := e.start(append(debugLog, id)...)
		_, err := io.WriteString(c.stdin, "sent before the hangup\n")
		require.NoError(t, err)
		require.Eventually(t, func() bool { return l.stdout.String() == "sent before the hangup\n" },
			30*time.Second, 10*time.Millisecond, l.stderr.String())
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGHUP))
		require.Equal(t, 129, c.exit(t, signalWithin), c.stderr.String())
		// The listener's stdin is still open: it stops because its peer
		// left, having sent nothing itself.
		require.Equal(t, 0, l.exit(t, signalWithin), "listener:\n%s\nsender:\n%s", l.stderr, c.stderr)
	})
}
