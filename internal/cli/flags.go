package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// NewFlagSet returns a flag set named name that returns its errors rather
// than exiting. If stderr is not nil, the set reports a bad flag there,
// followed by usage and its flags' defaults, which -h prints too; if stderr
// is nil, the set prints nothing, and the program reports the UsageError
// that Parse returns (Program.ExitStatus does).
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if stderr == nil {
		fs.SetOutput(io.Discard)
		return fs
	}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintf(stderr, "flags of %s:\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args with fs. It returns flag.ErrHelp for -h, and a
// UsageError for a bad flag (Reported if fs printed it).
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return UsageError{Msg: err.Error(), Reported: fs.Output() != io.Discard}
}

// ParseInterspersed parses flags that may come among and after the
// positional arguments ("get notes.txt -o out"), which package flag alone
// does not allow, and returns the positional arguments. "--" makes the next
// argument positional even if it starts with "-".
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := Parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// GlobalFlags defines the flags -net, -bootstrap, -listen and -v on fs; the
// function it returns gives their values once fs is parsed (-v logs debug
// messages to stderr).
func GlobalFlags(fs *flag.FlagSet, defaultNet string, stderr io.Writer) func() Options {
	network := fs.String("net", defaultNet, "network name: nodes of other networks are ignored")
	bootstrap := fs.String("bootstrap", "", "comma-separated host:port of nodes already in the network (optional: nodes on this machine or LAN are found by themselves)")
	listen := fs.String("listen", "", "UDP host:port to bind (default: every interface, a free port)")
	verbose := fs.Bool("v", false, "log what the node does to stderr")
	return func() Options {
		o := Options{Network: *network, Listen: *listen}
		if *bootstrap != "" {
			o.Bootstrap = strings.Split(*bootstrap, ",")
		}
		if *verbose {
			o.Logger = NewLogger(stderr, 2)
		}
		return o
	}
}
