package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// need returns the path of an outside program a test runs, or skips the
// test when it is missing; under CI=true a missing program fails it (.ci/run
// installs them).
func need(t *testing.T, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, program); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install it; .ci/run does)", program)
	}
	t.Skipf("%s is not installed: skipping (Debian: apt-get install %s)", program, program)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freeAddr returns a free TCP address on host.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// forwardPair starts "p2pcat -l -to to" and "p2pcat -from <free addr> <ticket>"
// and returns the address the second listens on, once it does. The
// forward's far end is named by its ticket.
func forwardPair(t *testing.T, e *testEnv, to string) string {
	t.Helper()
	srv := e.start(t, strings.NewReader(""), "-l", "-to", to)
	srv.waitLine(`^listening as`)
	tk := srv.waitLine(`^ticket (\S+)$`)[1]
	from := freeAddr(t, "127.0.0.1")
	cl := e.start(t, nil, "-from", from, tk)
	cl.waitLine(`^forwarding `)
	return from
}

// TestForwardCurl: curl fetches pages from an HTTP server through a
// forward, several times over one pair of p2pcats; the forward also
// reaches a unix socket.
func TestForwardCurl(t *testing.T) {
	curl := need(t, "curl")
	e := newEnv(t)
	page := strings.Repeat("through p2pcat\n", 10000)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, page)
	}))
	defer web.Close()
	from := forwardPair(t, e, web.Listener.Addr().String())
	for i := range 3 {
		out, err := exec.Command(curl, "-sS", "--max-time", "30", fmt.Sprintf("http://%s/page%d", from, i)).Output()
		require.NoError(t, err)
		require.Equal(t, page, string(out))
	}

	sock := filepath.Join(t.TempDir(), "web.sock")
	ul, err := net.Listen("unix", sock)
	require.NoError(t, err)
	unixWeb := &http.Server{Handler: web.Config.Handler}
	go unixWeb.Serve(ul)
	defer unixWeb.Close()
	from = forwardPair(t, e, "unix:"+sock)
	out, err := exec.Command(curl, "-sS", "--max-time", "30", "http://"+from+"/").Output()
	require.NoError(t, err)
	require.Equal(t, page, string(out))
}

// TestForwardExec: -exec runs a command per stream, the stream as its
// stdin and stdout.
func TestForwardExec(t *testing.T) {
	e := newEnv(t)
	srv := e.start(t, strings.NewReader(""), "-l", "-exec", "tr a-z A-Z")
	id := srv.waitLine(`^listening as (\S+)$`)[1]
	for _, word := range []string{"first\n", "second\n"} {
		c := e.start(t, strings.NewReader(word), id)
		require.Equal(t, 0, c.wait(), c.stderr.String())
		require.Equal(t, strings.ToUpper(word), c.stdout.String())
	}
}

// TestAllow: -allow lets the listed peers in and refuses the others'
// streams.
func TestAllow(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 2 {
		p := e.start(t, nil, "id", "-i", e.identity(t, fmt.Sprintf("peer%d", i)))
		require.Equal(t, 0, p.wait())
		ids = append(ids, strings.TrimSpace(p.stdout.String()))
	}
	srv := e.start(t, strings.NewReader(""), "-l", "-exec", "cat", "-allow", ids[0])
	id := srv.waitLine(`^listening as (\S+)$`)[1]
	ok := e.start(t, strings.NewReader("let in\n"), id, "-i", filepath.Join(e.dir, "peer0"))
	require.Equal(t, 0, ok.wait(), ok.stderr.String())
	require.Equal(t, "let in\n", ok.stdout.String())
	no := e.start(t, strings.NewReader("kept out\n"), id, "-i", filepath.Join(e.dir, "peer1"))
	require.Equal(t, 1, no.wait(), no.stderr.String())
	oneLine(t, no, "refused")
	require.Empty(t, no.stdout.String())
}

// TestForwardSSH: ssh with ProxyCommand='p2pcat %h' logs in to a real sshd
// (on a loopback port, with a host key and an authorized key made for the
// test) through "p2pcat -l -to", for several sessions in a row.
func TestForwardSSH(t *testing.T) {
	sshd := need(t, "sshd")
	ssh := need(t, "ssh")
	keygen := need(t, "ssh-keygen")
	e := newBinEnv(t)
	dir := t.TempDir()
	run := func(name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user"))
	pub, err := os.ReadFile(filepath.Join(dir, "user.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	addr := freeAddr(t, "127.0.0.1")
	_, port, _ := net.SplitHostPort(addr)
	cfg := fmt.Sprintf("Port %s\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\n"+
		"StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
		port, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600))
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege separation directory
	daemon := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	daemonLog := &syncBuffer{}
	daemon.Stderr = daemonLog
	require.NoError(t, daemon.Start())
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
	})
	testnet.Eventually(t, 20*time.Second, "sshd listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	srv := e.start("-l", "-to", addr)
	id := srv.waitLine(t, `^listening as (\S+)$`)[1]
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	proxy := fmt.Sprintf("%s -n %s -s 127.0.1.99 -i %s %%h", e.bin, e.network, filepath.Join(e.dir, "sshclient"))
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, ssh, "-F", "/dev/null", "-i", filepath.Join(dir, "user"),
			"-o", "ProxyCommand="+proxy, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", user+"@"+id, fmt.Sprintf("echo session %d", i))
		cmd.Env = append(os.Environ(), "P2PCAT_MACHINE_ONLY=1", "P2PCAT_BOOTSTRAP=", "TMPDIR="+e.dir)
		out, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "ssh: %s\nsshd: %s\np2pcat -l: %s", out, daemonLog, srv.stderr)
		require.Equal(t, fmt.Sprintf("session %d\n", i), string(out))
	}
	// ssh hangs up on its ProxyCommand when a session ends: no failure.
	require.NotContains(t, srv.stderr.String(), "p2pcat: stream from", "a session's end is no failure")
}

// TestForwardIperf3: iperf3 measures a TCP stream through a forward, and
// the same on plain loopback, in one run; the test checks both ran and
// logs the two rates (docs/BENCHMARKS.md has a run of it). Rates are
// measured, not asserted.
func TestForwardIperf3(t *testing.T) {
	iperf := need(t, "iperf3")
	e := newEnv(t)
	port := freeAddr(t, "127.0.0.1")
	_, p, _ := net.SplitHostPort(port)
	server := exec.Command(iperf, "-s", "-B", "127.0.0.1", "-p", p)
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		_ = server.Process.Kill()
		_ = server.Wait()
	})
	testnet.Eventually(t, 20*time.Second, "iperf3 listening", func() bool {
		c, err := net.Dial("tcp", port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	secs := "5"
	if testing.Short() {
		secs = "1"
	}
	rate := func(host, port string) string {
		t.Helper()
		var out []byte
		var err error
		// The server takes one test at a time: a client that comes while
		// it finishes the last one is told it is busy, or is reset while
		// the server still takes the readiness probe's connection for a
		// test's, and tries again.
		for range 5 {
			out, err = exec.Command(iperf, "-c", host, "-p", port, "-t", secs, "-f", "m").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "busy") && !strings.Contains(string(out), "reset by peer") {
				break
			}
		}
		require.NoError(t, err, "%s", out)
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			for i := 1; i < len(f) && strings.Contains(l, "receiver"); i++ {
				if f[i] == "Mbits/sec" {
					return f[i-1] + " Mbit/s"
				}
			}
		}
		t.Fatalf("no receiver line in iperf3's output:\n%s", out)
		return ""
	}
	plain := rate("127.0.0.1", p)
	from := forwardPair(t, e, port)
	fh, fp, _ := net.SplitHostPort(from)
	through := rate(fh, fp)
	t.Logf("iperf3 -t %s: plain loopback %s; through p2pcat -from/-l -to %s", secs, plain, through)
}
