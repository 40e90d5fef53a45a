package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// options are p2pcat's flags (see the manual in help.go).
type options struct {
	bootstrap   listFlag
	network     string
	identity    string
	host        string
	port        int
	listen      bool
	keep        bool
	udp         bool
	group       string
	anycast     bool
	quit        time.Duration
	ttl         time.Duration
	relayPort   int
	timeout     time.Duration
	verbose     countFlag
	version     bool
	relays      listFlag
	forceRelay  bool
	full        bool // -full: one-shot commands join as full members, not as light clients
	machineOnly bool // -no-lan or P2PCAT_MACHINE_ONLY: local discovery without the LAN
	to          string
	exec        string
	from        string
	allowList   string
	allow       map[p2psock.ID]bool // from -allow; nil allows every peer
	jsonOut     bool
	view        string // -view: the node's view page and metrics on this TCP address
	ticket      bool   // the peer was given as a ticket (peerArg): connect retries (connectPeer)
}

// listFlag is a flag that may be given several times (-b a -b b).
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

// parseArgs reads flags anywhere among the arguments (netcat style), and the
// environment variables P2PCAT_BOOTSTRAP and P2PCAT_MACHINE_ONLY, and
// returns the positional arguments. It returns flag.ErrHelp for -h and a
// cli.UsageError for a bad command line.
func parseArgs(args []string) (*options, []string, error) {
	o := &options{}
	fs := cli.NewFlagSet("p2pcat", "", nil) // the manual is the usage
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
	fs.BoolVar(&o.version, "version", false, "")
	fs.Var(&o.relays, "relay", "")
	fs.BoolVar(&o.forceRelay, "force-relay", false, "")
	fs.BoolVar(&o.full, "full", false, "")
	fs.BoolVar(&o.machineOnly, "no-lan", false, "")
	fs.StringVar(&o.to, "to", "", "")
	fs.StringVar(&o.exec, "exec", "", "")
	fs.StringVar(&o.from, "from", "", "")
	fs.StringVar(&o.allowList, "allow", "", "")
	fs.BoolVar(&o.jsonOut, "json", false, "")
	fs.StringVar(&o.view, "view", "", "")
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
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
			return nil, nil, cli.Usagef("bad entry point %q: want host:port", b)
		}
	}
	if o.port > 65535 {
		return nil, nil, cli.Usagef("bad port %d", o.port)
	}
	for _, r := range o.relays {
		if !strings.HasPrefix(r, "turn:") {
			return nil, nil, cli.Usagef("bad relay %q: want turn://user:password@host:port", r)
		}
	}
	if o.timeout <= 0 {
		return nil, nil, cli.Usagef("-timeout must be positive")
	}
	if o.allowList != "" {
		o.allow = map[p2psock.ID]bool{}
		for _, s := range strings.Split(o.allowList, ",") {
			id, err := p2psock.ParseID(strings.TrimSpace(s))
			if err != nil {
				if t, terr := parseTicket(strings.TrimSpace(s)); terr == nil {
					id, err = t.id, nil
				}
			}
			if err != nil {
				return nil, nil, cli.Usagef("-allow: %q is not a node ID", s)
			}
			o.allow[id] = true
		}
	}
	if (o.to != "" || o.exec != "") && !o.listen {
		return nil, nil, cli.Usagef("-to and -exec go with -l")
	}
	if o.to != "" && o.exec != "" {
		return nil, nil, cli.Usagef("-to and -exec exclude each other")
	}
	if o.to != "" {
		if _, err := parseLocalAddr(o.to); err != nil {
			return nil, nil, err
		}
	}
	if o.from != "" && (o.listen || o.udp || o.group != "") {
		return nil, nil, cli.Usagef("-from goes with an ID, not with -l, -u or -g")
	}
	if os.Getenv("P2PCAT_MACHINE_ONLY") != "" {
		o.machineOnly = true
	}
	return o, pos, nil
}
