package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// The exit statuses of the programs.
const (
	ExitOK      = 0 // success, or -h
	ExitFailure = 1 // a runtime failure: an unreachable peer, a network error
	ExitUsage   = 2 // a bad command line
)

// UsageError is a bad command line: exit status ExitUsage.
type UsageError struct {
	// Msg says what is wrong with the command line.
	Msg string
	// Reported means that the problem is already on stderr: the flag set
	// printed it, with the usage.
	Reported bool
}

// Error returns the message, prefixed with "usage: ".
func (e UsageError) Error() string { return "usage: " + e.Msg }

// Usage returns a UsageError saying msg.
func Usage(msg string) error { return UsageError{Msg: msg} }

// Usagef returns a UsageError whose message is formatted as by fmt.Sprintf.
func Usagef(format string, a ...any) error { return UsageError{Msg: fmt.Sprintf(format, a...)} }

// Program says how a program reports the error it exits with.
type Program struct {
	// Name starts every report on stderr: "share: no command".
	Name string
	// Hint ends the line that reports a usage error, as " (see p2pcat -h)"
	// does in "p2pcat: bad port 70000 (see p2pcat -h)"; "" adds nothing.
	Hint string
	// Usage is printed after the line that reports a usage error; "" prints
	// nothing more.
	Usage string
}

// ExitStatus reports err on stderr, in one line that starts with the
// program's name, and returns the exit status: ExitOK for nil and for
// flag.ErrHelp (the help is already printed), ExitUsage for a UsageError
// (followed by Hint and Usage, unless it was reported already), 128 plus
// the signal's number for Interrupted (reported by nothing more), and
// ExitFailure for any other error.
func (p Program) ExitStatus(err error, stderr io.Writer) int {
	var (
		ue UsageError
		in Interrupted
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &in):
		return in.Status()
	case errors.As(err, &ue):
		if !ue.Reported {
			fmt.Fprintf(stderr, "%s: %s%s\n", p.Name, ue.Msg, p.Hint)
			fmt.Fprint(stderr, p.Usage)
		}
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", p.Name, OneLine(err))
		return ExitFailure
	}
}

// OneLine returns err's message on one line: the lines of a message that has
// several (errors.Join makes them) are separated by "; ".
func OneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
