package main

// The chat protocol.
//
// Every message is one JSON object with a "type" field. Invitations and their
// answers go to one node, by ID, with Node.SendTo; what is said in a
// conference goes to its group, with GroupSocket.Send. No message names its
// sender: p2psock checks the origin's signature of every message and reports
// the origin as Message.From or GroupMessage.From, which a peer cannot forge.
// Nicknames, on the other hand, are whatever a node claims.
//
//	{"type":"invite","nick":"alice","conference":{...}}  organiser → each invitee (SendTo)
//	{"type":"accept","nick":"bob","group":"..."}         invitee → organiser (SendTo)
//	{"type":"decline","nick":"dave","group":"...","text":"on holiday"}
//	{"type":"joined","nick":"bob"}                       member → conference group
//	{"type":"said","nick":"bob","text":"hello"}
//	{"type":"left","nick":"bob"}
//
// Two kinds of records live in the DHT, each signed by the node it is about
// and renewed while that node runs, so they vanish within announceTTL of a
// crash:
//
//	userKey(nick)        value: the nickname   "who is called bob?" (to invite by name)
//	conf.PresenceKey()   value: a presence     "who is in this conference?" (for late joiners)

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/p2psock/p2psock/p2psock"
)

// Message types.
const (
	typeInvite  = "invite"
	typeAccept  = "accept"
	typeDecline = "decline"
	typeJoined  = "joined"
	typeSaid    = "said"
	typeLeft    = "left"
)

// message is what travels, by SendTo or in a conference's group.
type message struct {
	Type       string      `json:"type"`
	Nick       string      `json:"nick"`                 // the sender's nickname, as it claims
	Conference *Conference `json:"conference,omitempty"` // invite
	Group      string      `json:"group,omitempty"`      // accept, decline: the conference's group name
	Text       string      `json:"text,omitempty"`       // said: the line; decline: a reason
}

// Conference is what an invitation describes. The organiser's ID and the
// invitees' IDs make it unique and say who may take part; it is all a member
// needs, so once the invitations are out the organiser is no more necessary
// than anyone else.
type Conference struct {
	Name      string     `json:"name"`
	Topic     string     `json:"topic"`
	Start     time.Time  `json:"start"`
	Organiser p2psock.ID `json:"organiser"` // an ID marshals as its text form
	Nick      string     `json:"nick"`      // the organiser's nickname
	Invitees  []Invitee  `json:"invitees"`
}

// Invitee is one person invited, with the nickname the organiser knows them by.
type Invitee struct {
	ID   p2psock.ID `json:"id"`
	Nick string     `json:"nick,omitempty"`
}

// Group returns the name of the conference's group. It includes the
// organiser's ID, so two organisers' "standup" are different groups.
func (c *Conference) Group() string {
	return "p2psock-chat/conference/" + c.Organiser.String() + "/" + c.Name
}

// PresenceKey returns the DHT key under which the members of the conference
// announce themselves.
func (c *Conference) PresenceKey() string { return "p2psock-chat/presence/" + c.Group() }

// Admits reports whether id may take part: it is the organiser's or an
// invitee's. Members ignore group messages from anyone else: joining a group
// takes only its name, so the group itself is open.
func (c *Conference) Admits(id p2psock.ID) bool {
	return id == c.Organiser || slices.ContainsFunc(c.Invitees, func(i Invitee) bool { return i.ID == id })
}

// userKey returns the DHT key under which the nodes that call themselves
// nick announce themselves.
func userKey(nick string) string { return "p2psock-chat/user/" + nick }

// presence is a member's value under Conference.PresenceKey.
type presence struct {
	Nick string `json:"nick"`
}

// Limits on what a message may hold (a message is at most 64 KiB in any case).
const (
	maxNick = 32
	maxName = 64
)

// checkNick accepts a nickname: 1 to maxNick letters, digits, '-', '_' or '.'.
func checkNick(nick string) error {
	if nick == "" || len(nick) > maxNick || strings.IndexFunc(nick, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.", r)
	}) >= 0 {
		return fmt.Errorf("bad nickname %q: 1 to %d letters, digits, '-', '_' or '.'", nick, maxNick)
	}
	return nil
}

// checkName accepts a conference name: 1 to maxName characters, no spaces.
func checkName(name string) error {
	if name == "" || len(name) > maxName || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return fmt.Errorf("bad conference name %q: 1 to %d characters, no spaces", name, maxName)
	}
	return nil
}

func encode(m message) []byte { return mustJSON(m) }

// mustJSON marshals v, which cannot fail for the types of this file.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// decode parses a message and checks that it is well formed. Whether its
// sender may send it is for the receiver to check.
func decode(data []byte) (message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return message{}, fmt.Errorf("not a chat message: %w", err)
	}
	if err := checkNick(m.Nick); err != nil {
		return message{}, err
	}
	switch m.Type {
	case typeInvite:
		c := m.Conference
		if c == nil {
			return message{}, errors.New("invitation without a conference")
		}
		if err := checkName(c.Name); err != nil {
			return message{}, err
		}
	case typeAccept, typeDecline:
		if m.Group == "" {
			return message{}, fmt.Errorf("%s without a conference", m.Type)
		}
	case typeJoined, typeSaid, typeLeft:
	default:
		return message{}, fmt.Errorf("unknown message type %q", m.Type)
	}
	return m, nil
}

// short returns the first characters of an ID, enough to tell people apart
// on a screen.
func short(id p2psock.ID) string { return id.String()[:8] }
