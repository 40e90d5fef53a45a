package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// errQuit is what execute returns for /quit.
var errQuit = errors.New("quit")

const help = `Commands:
  /create <name> <start> <who,...> <topic...>   create a conference and invite people
        <start> is "now", "+10m", "15:04" or RFC 3339; <who> are nicknames or IDs
  /invites                     list the invitations not answered yet
  /accept [name]               accept an invitation (the latest if no name)
  /decline [name] [reason...]  decline an invitation (the latest if no name)
  /who                         who is in the conference
  /leave                       leave the conference
  /id                          show your ID
  /quit                        leave and quit (so does end of input)
Any other line is said in the conference (start it with // to say a line that begins with /).`

// terminal is a participant's user interface: it runs the lines its user
// types and prints what happens. print gets one line at a time.
type terminal struct {
	p     *Participant
	print func(line string)
}

func (t *terminal) printf(format string, args ...any) { t.print(fmt.Sprintf(format, args...)) }

// execute runs a line the user typed: a command, or a line to say.
func (t *terminal) execute(ctx context.Context, line string) error {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return nil
	case strings.HasPrefix(line, "//"):
		return t.p.Say(ctx, line[1:])
	case !strings.HasPrefix(line, "/"):
		return t.p.Say(ctx, line)
	}
	cmd, args, _ := strings.Cut(line[1:], " ")
	args = strings.TrimSpace(args)
	switch cmd {
	case "create":
		f := strings.SplitN(args, " ", 4)
		if len(f) < 3 {
			return errors.New("usage: /create <name> <start> <who,...> <topic...>")
		}
		start, err := parseStart(f[1], time.Now())
		if err != nil {
			return err
		}
		topic := ""
		if len(f) == 4 {
			topic = strings.TrimSpace(f[3])
		}
		c, err := t.p.Create(ctx, f[0], topic, start, strings.Split(f[2], ","))
		if err != nil {
			return err
		}
		t.printf("* you created %q and invited %s", c.Name, inviteeNames(t.p, c))
	case "invites":
		pending := t.p.Pending()
		if len(pending) == 0 {
			t.printf("* no invitations")
		}
		for _, c := range pending {
			t.printf("* %s", describe(c, c.Nick))
		}
	case "accept", "decline":
		name, reason, _ := strings.Cut(args, " ")
		c, err := t.invitation(name)
		if err != nil {
			return err
		}
		if cmd == "decline" {
			return t.p.Decline(ctx, c, strings.TrimSpace(reason))
		}
		return t.p.Accept(ctx, c)
	case "who":
		names, err := t.p.Who(ctx)
		if err != nil {
			return err
		}
		t.printf("* here: %s", strings.Join(names, ", "))
	case "leave":
		return t.p.Leave(ctx)
	case "id":
		t.printf("* you are %s, ID %s", t.p.Nick(), t.p.ID())
	case "help":
		for l := range strings.Lines(help) {
			t.print(strings.TrimSuffix(l, "\n"))
		}
	case "quit":
		return errQuit
	default:
		return fmt.Errorf("unknown command /%s (/help lists them)", cmd)
	}
	return nil
}

// invitation returns the pending invitation named name, or the latest one.
func (t *terminal) invitation(name string) (*Conference, error) {
	pending := t.p.Pending()
	for i := len(pending) - 1; i >= 0; i-- {
		if name == "" || pending[i].Name == name {
			return pending[i], nil
		}
	}
	if name == "" {
		return nil, errors.New("no invitation to answer")
	}
	return nil, fmt.Errorf("no invitation to %q (/invites lists them)", name)
}

// show prints an event.
func (t *terminal) show(e Event) {
	at := e.Time.Format("[15:04:05]")
	switch e.Kind {
	case EventInvited:
		t.printf("%s * %s; invited: %s. /accept or /decline?", at, describe(e.Conf, e.Nick), strings.Join(e.Names, ", "))
	case EventAccepted:
		t.printf("%s * %s accepted your invitation to %q", at, e.Nick, e.Conf.Name)
	case EventDeclined:
		reason := ""
		if e.Text != "" {
			reason = ": " + e.Text
		}
		t.printf("%s * %s declined your invitation to %q%s", at, e.Nick, e.Conf.Name, reason)
	case EventPresent:
		t.printf("%s * you are in %q; here: %s", at, e.Conf.Name, strings.Join(e.Names, ", "))
	case EventJoined:
		if e.From != t.p.ID() { // our own is reported by EventPresent
			t.printf("%s * %s joined", at, e.Nick)
		}
	case EventSaid:
		t.printf("%s %s: %s", at, e.Nick, e.Text)
	case EventLeft:
		if e.From == t.p.ID() {
			t.printf("%s * you left %q", at, e.Conf.Name)
		} else {
			t.printf("%s * %s left", at, e.Nick)
		}
	case EventNotice:
		t.printf("%s ! %s", at, e.Text)
	}
}

// describe says what an invitation is for.
func describe(c *Conference, organiser string) string {
	s := fmt.Sprintf("%s invites you to %q", organiser, c.Name)
	if c.Topic != "" {
		s += " (" + c.Topic + ")"
	}
	return s + ", " + when(c.Start, time.Now())
}

func inviteeNames(p *Participant, c *Conference) string {
	names := make([]string, len(c.Invitees))
	for i, inv := range c.Invitees {
		names[i] = p.nameOf(inv.ID, inv.Nick)
	}
	return strings.Join(names, ", ")
}

// parseStart parses a start time: "now", a duration from now ("+10m"), a
// time of today ("15:04") or RFC 3339.
func parseStart(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s[1:])
		return now.Add(d), err
	}
	if t, err := time.ParseInLocation("15:04", s, now.Location()); err == nil {
		y, m, d := now.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, now.Location()), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad start %q: give now, +10m, 15:04 or RFC 3339", s)
	}
	return t, nil
}

// when says when a conference starts, relative to now.
func when(start, now time.Time) string {
	start = start.Local()
	at := start.Format("15:04")
	if y, m, d := start.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		at = start.Format("Mon 2 Jan 15:04")
	}
	switch d := start.Sub(now); {
	case d > time.Minute:
		return fmt.Sprintf("starting at %s (in %s)", at, strings.TrimSuffix(d.Round(time.Minute).String(), "0s"))
	case d > -time.Minute:
		return "starting now"
	}
	return "started at " + at
}
