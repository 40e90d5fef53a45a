package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

type options struct {
	bootstrap listFlag
	network   string
	identity  string
	host      string
	port      int
	listen    bool
	keep      bool
	udp       bool
	group     string
	anycast   bool
	quit      time.Duration
	ttl       time.Duration
	relayPort int
	timeout   time.Duration
	verbose   countFlag
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// countFlag is a boolean flag that counts how often it is given (-v -v).
type countFlag int

func (c *countFlag) String() string   { return strconv.Itoa(int(*c)) }
func (c *countFlag) Set(string) error { *c++; return nil }
func (c *countFlag) IsBoolFlag() bool { return true }

// run is p2pcat: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, pos, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, manual)
		return exitOK
	}
	if err == nil {
		err = dispatch(ctx, o, pos, stdin, stdout, stderr)
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "p2pcat: %v (see p2pcat -h)\n", err)
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitOK // interrupted
	default:
		fmt.Fprintf(stderr, "p2pcat: %v\n", oneLine(err))
		return exitFailure
	}
}

// parseArgs reads flags anywhere among the arguments (netcat style) and
// returns the positional ones.
func parseArgs(args []string) (*options, []string, error) {
	o := &options{}
	fs := flag.NewFlagSet("p2pcat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&o.bootstrap, "b", "")
	fs.StringVar(&o.network, "n", "", "")
	fs.StringVar(&o.identity, "i", "", "")
	fs.StringVar(&o.host, "s", "", "")
	fs.IntVar(&o.port, "p", -1, "")
	fs.BoolVar(&o.listen, "l", false, "")
	fs.BoolVar(&o.keep, "k", false, "")
	fs.BoolVar(&o.udp, "u", false, "")
	fs.StringVar(&o.group, "g", "", "")
	fs.BoolVar(&o.anycast, "any", false, "")
	fs.DurationVar(&o.quit, "q", -1, "")
	fs.DurationVar(&o.ttl, "ttl", time.Hour, "")
	fs.IntVar(&o.relayPort, "relay-port", 3478, "")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "")
	fs.Var(&o.verbose, "v", "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(o.bootstrap) == 0 {
		for _, b := range strings.Split(os.Getenv("P2PCAT_BOOTSTRAP"), ",") {
			if b = strings.TrimSpace(b); b != "" {
				o.bootstrap = append(o.bootstrap, b)
			}
		}
	}
	for _, b := range o.bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, nil, usagef("bad entry point %q: want host:port", b)
		}
	}
	if o.port > 65535 {
		return nil, nil, usagef("bad port %d", o.port)
	}
	return o, pos, nil
}

func dispatch(ctx context.Context, o *options, pos []string, stdin io.Reader, stdout, stderr io.Writer) error {
	arg := func(i int) string {
		if i < len(pos) {
			return pos[i]
		}
		return ""
	}
	want := func(n int, what string) error {
		if len(pos) != n {
			return usagef("%s takes %d argument(s), got %d", what, n-1, len(pos)-1)
		}
		return nil
	}
	switch {
	case arg(0) == "id":
		if err := want(1, "id"); err != nil {
			return err
		}
		id, release, err := identity(o, stderr, false)
		if err != nil {
			return err
		}
		release()
		fmt.Fprintln(stdout, id.ID())
		return nil
	case arg(0) == "serve":
		if err := want(1, "serve"); err != nil {
			return err
		}
		return serve(ctx, o, stdout, stderr)
	case arg(0) == "dht":
		return dhtCmd(ctx, o, pos[1:], stdout, stderr)
	case o.group != "":
		if len(pos) != 0 {
			return usagef("-g takes no other argument, got %q", pos[0])
		}
		return groupMode(ctx, o, stdin, stdout, stderr)
	case o.udp && o.listen:
		if len(pos) != 0 {
			return usagef("-u -l takes no other argument, got %q", pos[0])
		}
		return datagramListen(ctx, o, stdout, stderr)
	case o.udp:
		if err := want(1, "-u"); err != nil {
			return err
		}
		return datagramSend(ctx, o, pos[0], stdin, stdout, stderr)
	case o.listen:
		if len(pos) != 0 {
			return usagef("-l takes no other argument, got %q", pos[0])
		}
		return streamListen(ctx, o, stdin, stdout, stderr)
	case len(pos) == 1:
		id, err := p2psock.ParseID(pos[0])
		if err != nil {
			return usagef("%q is not a node ID (52 base32 characters)", pos[0])
		}
		return streamConnect(ctx, o, id, stdin, stdout, stderr)
	case len(pos) > 1:
		return usagef("unexpected argument %q", pos[1])
	}
	return usagef("nothing to do: give an ID, -l, -u, -g, id, serve or dht")
}

// identity loads (or creates) the identity file and locks it, so that a
// second p2pcat on the machine does not run with the same ID: if the file is
// locked, it gets a fresh identity instead. release unlocks.
func identity(o *options, stderr io.Writer, lock bool) (*p2psock.Identity, func(), error) {
	path := o.identity
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil, nil, fmt.Errorf("no identity file (-i) and no config directory: %w", err)
		}
		path = filepath.Join(dir, "p2pcat", "identity")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	release := func() {}
	if lock {
		f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			id, err := p2psock.NewIdentity()
			if o.verbose > 0 && err == nil {
				fmt.Fprintf(stderr, "p2pcat: %s is in use by another p2pcat; using a fresh identity\n", path)
			}
			return id, release, err
		}
		release = func() { f.Close() }
	}
	id, err := p2psock.LoadOrCreateIdentity(path)
	if err != nil {
		release()
		return nil, nil, err
	}
	return id, release, nil
}

// node starts and binds this process's node, with a DHT attached (every
// p2pcat node stores records for the network, whatever its mode). The
// caller closes the node, then calls release.
func node(ctx context.Context, o *options, stderr io.Writer, cfg p2psock.Config) (*p2psock.Node, *dht.DHT, func(), error) {
	id, release, err := identity(o, stderr, true)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Identity = id
	cfg.Network = o.network
	cfg.Bootstrap = o.bootstrap
	cfg.LocalDiscovery = true
	cfg.MachineOnlyDiscovery = os.Getenv("P2PCAT_MACHINE_ONLY") != ""
	if o.port >= 0 {
		cfg.ListenAddr = net.JoinHostPort(o.host, strconv.Itoa(o.port))
	} else if o.host != "" {
		cfg.ListenAddr = net.JoinHostPort(o.host, "0")
	}
	if o.verbose > 0 {
		level := slog.LevelInfo
		if o.verbose > 1 {
			level = slog.LevelDebug
		}
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	n, err := p2psock.NewNode(cfg)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	d, err := dht.New(n, dht.Config{})
	if err != nil {
		n.Close()
		release()
		return nil, nil, nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := n.Bind(bctx); err != nil {
		d.Close()
		n.Close()
		release()
		return nil, nil, nil, fmt.Errorf("joining the network: %w", err)
	}
	return n, d, release, nil
}

// withNode runs f with a bound node and its DHT, and closes them afterwards.
func withNode(ctx context.Context, o *options, stderr io.Writer, cfg p2psock.Config, f func(*p2psock.Node, *dht.DHT) error) error {
	n, d, release, err := node(ctx, o, stderr, cfg)
	if err != nil {
		return err
	}
	defer release()
	defer n.Close()
	defer d.Close()
	return f(n, d)
}

func streamConnect(ctx context.Context, o *options, id p2psock.ID, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, _ *dht.DHT) error {
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		c, err := retryUnreachable(cctx, func() (*p2psock.Conn, error) { return n.Connect(cctx, id) })
		if err != nil {
			return fmt.Errorf("connect %s: %w", short(id), err)
		}
		defer c.Close()
		if o.verbose > 0 {
			fmt.Fprintf(stderr, "p2pcat: connected to %s (%s)\n", id, pathKind(c))
		}
		return pipe(ctx, c, newPump(stdin), stdout)
	})
}

func streamListen(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stderr, "listening as %s\n", n.ID())
		in := newPump(stdin)
		for {
			c, err := n.AcceptContext(ctx)
			if err != nil {
				return err
			}
			if o.verbose > 0 {
				fmt.Fprintf(stderr, "p2pcat: stream from %s (%s)\n", c.RemoteAddr(), pathKind(c))
			}
			err = pipe(ctx, c, in, stdout)
			c.Close()
			if err != nil || !o.keep {
				return err
			}
		}
	})
}

// pump reads stdin once, for one stream after another (-k).
type pump struct {
	ch       chan []byte
	err      error // set before ch closes
	pending  []byte
	terminal bool // stdin is a terminal
}

func newPump(r io.Reader) *pump {
	p := &pump{ch: make(chan []byte, 4), terminal: isTerminal(r)}
	go func() {
		for {
			b := make([]byte, 64<<10)
			n, err := r.Read(b)
			if n > 0 {
				p.ch <- b[:n]
			}
			if err != nil {
				if err != io.EOF {
					p.err = err
				}
				close(p.ch)
				return
			}
		}
	}()
	return p
}

// pipe copies the pump to c and c to out. The end of the input half-closes
// c. It returns once both directions are done; but when the peer closes its
// side while the input is a terminal (a person who may never type ^D), it
// stops there.
func pipe(ctx context.Context, c *p2psock.Conn, in *pump, out io.Writer) error {
	readDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, c)
		readDone <- err
	}()
	inputDone := false
	for {
		if in.pending == nil && !inputDone {
			select {
			case b, ok := <-in.ch:
				if !ok {
					inputDone = true
					if err := c.CloseWrite(); err != nil {
						return err
					}
					if in.err != nil {
						return fmt.Errorf("reading stdin: %w", in.err)
					}
					continue
				}
				in.pending = b
			case err := <-readDone:
				if err != nil || in.terminal {
					return finishRead(c, err)
				}
				readDone = nil // the peer is done; send the rest of the input
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if in.pending != nil {
			if _, err := c.Write(in.pending); err != nil {
				select {
				case rerr := <-readDone: // the peer went away: report why
					if rerr != nil {
						return rerr
					}
				default:
				}
				return err
			}
			in.pending = nil
			continue
		}
		if readDone == nil {
			return nil // both directions are done
		}
		select {
		case err := <-readDone:
			return finishRead(c, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishRead ends a stream whose peer finished sending: this side's
// sending ends too.
func finishRead(c *p2psock.Conn, err error) error {
	if err != nil {
		return err
	}
	return c.CloseWrite()
}

func datagramSend(ctx context.Context, o *options, dest string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		id    p2psock.ID
		key   p2psock.Key
		byKey = strings.HasPrefix(dest, "@")
	)
	if byKey {
		if len(dest) == 1 {
			return usagef("empty key after @")
		}
		key = p2psock.KeyOf([]byte(dest[1:]))
	} else {
		var err error
		if id, err = p2psock.ParseID(dest); err != nil {
			return usagef("%q is not a node ID (52 base32 characters) or @key", dest)
		}
	}
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, _ *dht.DHT) error {
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		go printDatagrams(rctx, n, stdout, o.verbose > 0)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), p2psock.MaxMessageSize)
		for sc.Scan() {
			sctx, cancel := context.WithTimeout(ctx, o.timeout)
			_, err := retryUnreachable(sctx, func() (struct{}, error) {
				if byKey {
					return struct{}{}, n.SendToKey(sctx, sc.Bytes(), key)
				}
				return struct{}{}, n.SendTo(sctx, sc.Bytes(), id)
			})
			cancel()
			if err != nil {
				return fmt.Errorf("send to %s: %w", dest, err)
			}
		}
		return sc.Err()
	})
}

func datagramListen(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stderr, "listening as %s\n", n.ID())
		return printDatagrams(ctx, n, stdout, o.verbose > 0)
	})
}

func printDatagrams(ctx context.Context, n *p2psock.Node, out io.Writer, verbose bool) error {
	for {
		m, err := n.RecvFrom(ctx)
		if err != nil {
			return err
		}
		if verbose {
			how := "to this node"
			if m.ByKey {
				how = "by key " + m.To.String()[:8]
			}
			fmt.Fprintf(out, "%s (%s, %d hops): %s\n", short(m.From), how, m.Hops, m.Data)
			continue
		}
		fmt.Fprintf(out, "%s\n", m.Data)
	}
}

func groupMode(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, _ *dht.DHT) error {
		if o.anycast {
			return anycast(ctx, o, n, stdin)
		}
		jctx, cancel := context.WithTimeout(ctx, o.timeout)
		g, err := n.Join(jctx, o.group)
		cancel()
		if err != nil {
			return fmt.Errorf("join %s: %w", o.group, err)
		}
		defer g.Close()
		fmt.Fprintf(stderr, "joined %s as %s\n", o.group, n.ID())
		rctx, stop := context.WithCancel(ctx)
		defer stop()
		recvDone := make(chan error, 1)
		go func() {
			for {
				m, err := g.Recv(rctx)
				if err != nil {
					recvDone <- err
					return
				}
				if m.From == n.ID() && !m.Anycast {
					continue // this node's own multicast coming back
				}
				fmt.Fprintf(stdout, "%s: %s\n", short(m.From), m.Data)
			}
		}()
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), p2psock.MaxMessageSize)
		for sc.Scan() {
			sctx, cancel := context.WithTimeout(ctx, o.timeout)
			err = g.Send(sctx, sc.Bytes())
			cancel()
			if err != nil {
				return fmt.Errorf("send to %s: %w", o.group, err)
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		// End of input: keep printing until interrupted, or for -q.
		if o.quit >= 0 {
			t := time.NewTimer(o.quit)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case err := <-recvDone:
				return err
			}
		}
		return <-recvDone
	})
}

// anycast hands each line to one member of the group, without joining it.
func anycast(ctx context.Context, o *options, n *p2psock.Node, stdin io.Reader) error {
	g := n.Group(o.group)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), p2psock.MaxMessageSize)
	for sc.Scan() {
		sctx, cancel := context.WithTimeout(ctx, o.timeout)
		err := retryErr(sctx, func() error { return g.SendAny(sctx, sc.Bytes()) })
		cancel()
		if err != nil {
			return fmt.Errorf("anycast to %s: %w", o.group, err)
		}
	}
	return sc.Err()
}

func serve(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	if o.port < 0 {
		o.port = 4000
	}
	cfg := p2psock.Config{RelayAddr: net.JoinHostPort(o.host, strconv.Itoa(o.relayPort))}
	return withNode(ctx, o, stderr, cfg, func(n *p2psock.Node, _ *dht.DHT) error {
		fmt.Fprintf(stdout, "serving as %s\n", n.ID())
		port := n.UDPAddr().Port
		for _, ip := range hostIPs(o.host) {
			fmt.Fprintf(stdout, "entry point: %s  (p2pcat -b %s ...)\n",
				net.JoinHostPort(ip, strconv.Itoa(port)), net.JoinHostPort(ip, strconv.Itoa(port)))
		}
		fmt.Fprintf(stdout, "TURN relay on UDP port %d; STUN on UDP port %d\n", o.relayPort, port)
		<-ctx.Done()
		return nil
	})
}

// hostIPs lists the addresses others may reach this host at: host if given,
// otherwise every up, non-loopback interface address (loopback if none).
func hostIPs(host string) []string {
	if host != "" {
		return []string{host}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}

func dhtCmd(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("dht needs a command: add, rm, get or watch")
	}
	cmd, args := args[0], args[1:]
	need := map[string]int{"add": 2, "rm": 2, "get": 1, "watch": 1}
	k, ok := need[cmd]
	if !ok {
		return usagef("unknown dht command %q: want add, rm, get or watch", cmd)
	}
	if len(args) != k {
		return usagef("dht %s takes %d argument(s), got %d", cmd, k, len(args))
	}
	return withNode(ctx, o, stderr, p2psock.Config{}, func(n *p2psock.Node, d *dht.DHT) error {
		octx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		key := args[0]
		switch cmd {
		case "add":
			if o.ttl <= 0 {
				return usagef("-ttl must be positive")
			}
			return retryErr(octx, func() error { return d.Add(octx, key, []byte(args[1]), o.ttl) })
		case "rm":
			return retryErr(octx, func() error { return d.Remove(octx, key, []byte(args[1])) })
		case "get":
			var recs []dht.Record
			err := retryErr(octx, func() (err error) { recs, err = d.Get(octx, key); return err })
			if err != nil {
				return err
			}
			for _, r := range recs {
				if o.verbose > 0 {
					fmt.Fprintf(stdout, "%s\t%s\t%s\n", short(r.Owner), r.Expires.Format(time.RFC3339), r.Value)
				} else {
					fmt.Fprintf(stdout, "%s\n", r.Value)
				}
			}
			return nil
		case "watch":
			ch, err := d.Watch(ctx, key)
			if err != nil {
				return err
			}
			for ev := range ch {
				fmt.Fprintf(stdout, "%s %s %s\n", ev.Type, short(ev.Record.Owner), ev.Record.Value)
			}
			return ctx.Err()
		}
		return nil
	})
}

// retryUnreachable retries f while it fails with ErrUnreachable and ctx
// lasts: a node that joined a moment ago is not yet in every routing table.
func retryUnreachable[T any](ctx context.Context, f func() (T, error)) (T, error) {
	wait := 100 * time.Millisecond
	for {
		v, err := f()
		if err == nil || !errors.Is(err, p2psock.ErrUnreachable) || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

func retryErr(ctx context.Context, f func() error) error {
	_, err := retryUnreachable(ctx, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

func short(id p2psock.ID) string { return id.String()[:8] }

func pathKind(c *p2psock.Conn) string {
	p := c.Path()
	if p.Relayed {
		return "relayed via " + p.Remote.String()
	}
	return "direct to " + p.Remote.String()
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
