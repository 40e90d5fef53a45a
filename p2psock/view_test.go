package p2psock

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
)

// browser starts headless Chromium for the test and returns its context.
// Without Chromium the test is skipped, or fails under CI=true (.ci/run
// installs Debian's chromium). The errors the page logs are collected in
// the returned function's result.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (Debian package chromium); CI must have it")
		}
		t.Skip("chromium not found: install Debian's chromium package to test the view page")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	var (
		mu   sync.Mutex
		errs []string
	)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("log: %s (%s)", ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			errs = append(errs, msg)
			mu.Unlock()
		}
	}))
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// TestViewPage opens the view page of a node of a 20-node loopback network
// in headless Chromium: it loads with no console error, shows the node's
// ID and its contacts, and a node that joins, and one that leaves, show on
// it without a reload. P2PSOCK_VIEW_SCREENSHOTS=dir saves screenshots there.
func TestViewPage(t *testing.T) {
	ctx, pageErrors := browser(t)
	tn := newDHTNet(t, 20, func(i int) Config {
		if i == 0 {
			return Config{DebugAddr: "127.0.0.1:0"}
		}
		return Config{}
	})
	nd := tn.Nodes[0]
	require.NotNil(t, nd.DebugAddr())
	require.Nil(t, tn.Nodes[1].DebugAddr())

	// Some life for the page: records in the DHT, a group, connections.
	cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 1; i <= 4; i++ {
		require.NoError(t, tn.Nodes[i].d.Add(cctx, fmt.Sprintf("user:%d", i), []byte("laptop"), time.Hour))
	}
	for _, i := range []int{0, 3, 7, 11} {
		g, err := tn.Nodes[i].Join(cctx, "room:lobby")
		require.NoError(t, err)
		defer g.Close()
	}
	for _, i := range []int{5, 9} {
		peer := tn.Nodes[i]
		go func() {
			c, err := peer.Accept()
			if err == nil {
				io.Copy(io.Discard, c)
			}
		}()
		c, err := nd.Connect(cctx, peer.ID())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(make([]byte, 256<<10))
		require.NoError(t, err)
	}
	testnet.Eventually(t, 30*time.Second, "node 0 knows the 19 others", func() bool { return len(nd.Contacts()) >= 19 })
	want := len(nd.Contacts())

	url := "http://" + nd.DebugAddr().String() + "/"
	wait := func(what, expr string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "waiting for the page to show %s (%s)", what, expr)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	wait("the node's ID", fmt.Sprintf(`document.querySelector("#node-id").textContent === %q`, nd.ID().String()))
	wait("its contacts", fmt.Sprintf(`document.querySelectorAll("#contacts tbody tr").length >= %d && p2pview.ring.nodes(".contact").length >= %d && Number(document.querySelector("#contact-count").textContent) >= %d`, want, want, want))
	wait("a few snapshots for the charts", `p2pview.snapshots >= 4`)
	wait("the group tree", `document.querySelectorAll("#groups tbody tr").length === 1`)
	wait("the connections", `document.querySelectorAll("#conns tbody tr").length >= 2`)
	// Loopback has no NAT: every link is direct, in the tables and on the
	// ring, and the legend names the three kinds.
	wait("the links' kinds", fmt.Sprintf(`document.querySelectorAll("#contacts td.direct").length >= %d && document.querySelectorAll("#conns td.direct").length >= 2 && p2pview.ring.edges(".direct").length >= %d && p2pview.ring.edges(".punched, .relayed").length === 0 && ["direct", "punched", "relayed"].every((k) => document.querySelector("#ring-legend .sw." + k) !== null)`, want, want))
	shot(t, ctx, "view.png")

	has := func(id ID) string {
		return fmt.Sprintf(`document.querySelector('#contacts tr[data-id=%q]') !== null && p2pview.ring.getElementById(%q).nonempty()`, id.String(), id.String())
	}
	joiner := tn.Add()
	wait("the node that joined", has(joiner.ID()))
	leaver := tn.Nodes[13]
	wait("the node that will leave", has(leaver.ID()))
	before, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.querySelector("#contact-count").textContent)`))
	require.NoError(t, err)
	require.NoError(t, leaver.Close())
	wait("the node that left, gone", "!("+has(leaver.ID())+")")
	wait("the contact count and the ring, shrunk", fmt.Sprintf(`Number(document.querySelector("#contact-count").textContent) < %d && p2pview.ring.nodes(".contact").length < %d && document.querySelectorAll("#contacts tbody tr").length < %d`, before, before, before))
	require.Empty(t, pageErrors(), "the page logged errors")
}

// TestVnetViewPageLinkKinds opens the view page of a node behind a
// port-restricted NAT on the simulated Internet, whose routing table holds
// the three kinds of link: two public nodes (direct), a node behind a
// full-cone NAT (punched) and one behind a symmetric NAT (relayed: no
// direct path exists between the two). Every contact's row and ring edge
// shows its kind, a relayed edge is drawn from the contact that relays it,
// and the page logs no error.
func TestVnetViewPageLinkKinds(t *testing.T) {
	ctx, pageErrors := browser(t)
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.FullCone, simnet.Symmetric, simnet.PortRestricted}
	tn, _ := newVnetNet(t, kinds, func(i int, c *Config) {
		if i == 4 {
			c.DebugAddr = "127.0.0.1:0"
		}
	})
	nd := tn.nodes[4]
	count := func() map[PathKind]int {
		m := map[PathKind]int{}
		for _, c := range nd.Overlay().Table() {
			m[c.Kind()]++
		}
		return m
	}
	testnet.Eventually(t, 30*time.Second, "the port-restricted node has a contact of each kind", func() bool {
		m := count()
		return nd.Info().Contacts == 4 && m[PathDirect] == 2 && m[PathPunched] == 1 && m[PathRelayed] == 1
	})
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+nd.DebugAddr().String()+"/")))
	var checks []string
	for _, c := range nd.Overlay().Table() {
		from := nd.ID()
		if c.Kind() == PathRelayed {
			from = c.Via
		}
		checks = append(checks, fmt.Sprintf(`document.querySelector('#contacts tr[data-id=%q] td.%s') !== null && p2pview.ring.getElementById("link:%s").hasClass(%q) && p2pview.ring.getElementById("link:%s").data("source") === %q`,
			c.ID.String(), c.Kind(), c.ID.String(), c.Kind(), c.ID.String(), from.String()))
	}
	expr := strings.Join(checks, " && ")
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second),
		chromedp.WithPollingInterval(100*time.Millisecond)))
	if errs := pageErrors(); err != nil && len(errs) > 0 {
		t.Fatalf("waiting for the page to show every link's kind: %v; the page logged %d errors, the first: %s", err, len(errs), errs[0])
	}
	require.NoError(t, err, "waiting for the page to show every link's kind")
	require.Empty(t, pageErrors(), "the page logged errors")
}

// shot saves a screenshot of the page as name in $P2PSOCK_VIEW_SCREENSHOTS,
// if set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("P2PSOCK_VIEW_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

// TestNatlabViewPage loads the view page at $P2PSOCK_VIEW_URL, of a node
// another program runs, in headless Chromium, and checks that it shows
// with no console error the ID $P2PSOCK_VIEW_ID, a NAT described as
// matching $P2PSOCK_VIEW_NAT (a regular expression), and at least one link
// of each kind listed in $P2PSOCK_VIEW_KINDS (e.g. "direct relayed"), in
// the contacts table and on the ring, and a connection of each kind listed
// in $P2PSOCK_VIEW_CONN_KINDS. .ci/natlab-view runs it inside a
// natlab host; without P2PSOCK_VIEW_URL it is skipped.
// P2PSOCK_VIEW_SCREENSHOTS=dir saves a screenshot there (view-natlab.png).
func TestNatlabViewPage(t *testing.T) {
	url := os.Getenv("P2PSOCK_VIEW_URL")
	if url == "" {
		t.Skip("P2PSOCK_VIEW_URL is not set: .ci/natlab-view runs this test inside a natlab host")
	}
	ctx, pageErrors := browser(t)
	wait := func(what, expr string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond)))
		require.NoError(t, err, "waiting for the page to show %s (%s)", what, expr)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	wait("the node's ID", fmt.Sprintf(`document.querySelector("#node-id").textContent === %q`, os.Getenv("P2PSOCK_VIEW_ID")))
	wait("its NAT", fmt.Sprintf(`new RegExp(%q).test(document.querySelector("#nat").textContent)`, os.Getenv("P2PSOCK_VIEW_NAT")))
	for _, k := range strings.Fields(os.Getenv("P2PSOCK_VIEW_KINDS")) {
		wait("a "+k+" link", fmt.Sprintf(`document.querySelectorAll("#contacts td.%s").length > 0 && p2pview.ring.edges(".%s").length > 0`, k, k))
	}
	for _, k := range strings.Fields(os.Getenv("P2PSOCK_VIEW_CONN_KINDS")) {
		wait("a "+k+" connection", fmt.Sprintf(`document.querySelectorAll("#conns td.%s").length > 0`, k))
	}
	wait("a few snapshots for the charts", `p2pview.snapshots >= 3`)
	shot(t, ctx, "view-natlab.png")
	require.Empty(t, pageErrors(), "the page logged errors")
}
