package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pion/ice/v2"
	"github.com/stretchr/testify/require"
)

// Test fixtures shared with fuzz_test.go.

var (
	testSession = [8]byte{0x5a, 0x1c, 0x33, 0x9e, 0x02, 0x7d, 0xb4, 0x41}
	testUfrag   = "hG7qT2xKpW9mZc4V"
	testPwd     = "Lr8sN1vQe5Yb0JtXa3Fk6Ud9Hw2Po7Ci"
	testHost    = "1020016950 1 udp 2130706431 192.0.2.1 40000 typ host"
	testSrflx   = "3891555988 1 udp 1694498815 203.0.113.7 50123 typ srflx raddr 192.0.2.1 rport 40000"
)

// testSignals are valid signalling messages, one of each shape.
func testSignals() map[string]Signal {
	many := make([]string, MaxCandidates)
	for i := range many {
		many[i] = fmt.Sprintf("%d 1 udp 2130706431 192.0.2.%d 40000 typ host", i, i)
	}
	big := make([]string, MaxCandidates)
	for i := range big {
		big[i] = strings.Repeat(string(rune('a'+i%26)), MaxCandidateBytes)
	}
	return map[string]Signal{
		"offer":                {Kind: SignalOffer, Session: testSession, Ufrag: testUfrag, Pwd: testPwd},
		"offer relay":          {Kind: SignalOffer, Session: testSession, Flags: SignalFlagRelay | SignalFlagWantRelay, Ufrag: testUfrag, Pwd: testPwd},
		"offer with candidate": {Kind: SignalOffer, Session: testSession, Ufrag: testUfrag, Pwd: testPwd, Candidates: []string{testHost}},
		"offer unknown flags":  {Kind: SignalOffer, Session: testSession, Flags: 0xFC, Reason: 9, Ufrag: testUfrag, Pwd: testPwd},
		"answer":               {Kind: SignalAnswer, Session: testSession, Flags: SignalFlagRelay, Ufrag: "abcd", Pwd: strings.Repeat("p", 22)},
		"answer max strings":   {Kind: SignalAnswer, Session: testSession, Ufrag: strings.Repeat("u", MaxUfrag), Pwd: strings.Repeat("p", MaxUfrag)},
		"answer empty strings": {Kind: SignalAnswer},
		"candidates one":       {Kind: SignalCandidates, Session: testSession, Candidates: []string{testSrflx}},
		"candidates two":       {Kind: SignalCandidates, Session: testSession, Candidates: []string{testHost, testSrflx}},
		"candidates empty one": {Kind: SignalCandidates, Session: testSession, Candidates: []string{""}},
		"candidates max count": {Kind: SignalCandidates, Session: testSession, Candidates: many},
		"candidates max size":  {Kind: SignalCandidates, Session: testSession, Candidates: big},
		"candidates none":      {Kind: SignalCandidates, Session: testSession},
		"reject conflict":      {Kind: SignalReject, Session: testSession, Reason: RejectConflict},
		"reject closing":       {Kind: SignalReject, Session: testSession, Reason: RejectClosing},
		"reject busy":          {Kind: SignalReject, Session: testSession, Reason: RejectBusy},
		"close":                {Kind: SignalClose},
	}
}

func TestSignalConstants(t *testing.T) {
	// The values are normative (docs/PROTOCOL.md §12).
	require.Equal(t, byte(1), SignalVersion)
	require.Equal(t, []byte{1, 2, 3, 4, 5}, []byte{SignalOffer, SignalAnswer, SignalCandidates, SignalReject, SignalClose})
	require.Equal(t, []byte{0x01, 0x02}, []byte{SignalFlagRelay, SignalFlagWantRelay})
	require.Equal(t, []byte{1, 2, 3}, []byte{RejectConflict, RejectClosing, RejectBusy})
	require.Equal(t, []int{255, 32, 512}, []int{MaxUfrag, MaxCandidates, MaxCandidateBytes})
	require.Equal(t, []byte{1, 2, 3}, []byte{RelayRequest, RelayOffer, RelayNone})
	require.Equal(t, []byte{1, 4}, []byte{ServiceSignal, ServiceRelay})
}

func TestSignal(t *testing.T) {
	for name, s := range testSignals() {
		t.Run(name, func(t *testing.T) {
			b, err := AppendSignal(nil, s)
			require.NoError(t, err)
			size := 15 + len(s.Ufrag) + len(s.Pwd)
			for _, c := range s.Candidates {
				size += 2 + len(c)
			}
			require.Len(t, b, size)
			require.Equal(t, []byte{SignalVersion, s.Kind}, b[:2])
			require.Equal(t, s.Session[:], b[2:10])
			require.Equal(t, []byte{s.Flags, s.Reason, byte(len(s.Ufrag))}, b[10:13])
			got, err := ParseSignal(b)
			require.NoError(t, err)
			require.Equal(t, s, got)

			// AppendSignal appends.
			pre := []byte{0xEE, 0xFF}
			b2, err := AppendSignal(bytes.Clone(pre), s)
			require.NoError(t, err)
			require.Equal(t, append(pre, b...), b2)
		})
	}
}

func TestSignalAppendErrors(t *testing.T) {
	ok := testSignals()["offer"]
	tests := []struct {
		name string
		mod  func(*Signal)
	}{
		{"ufrag 256", func(s *Signal) { s.Ufrag = strings.Repeat("u", MaxUfrag+1) }},
		{"pwd 256", func(s *Signal) { s.Pwd = strings.Repeat("p", MaxUfrag+1) }},
		{"33 candidates", func(s *Signal) { s.Candidates = make([]string, MaxCandidates+1) }},
		{"candidate 513 bytes", func(s *Signal) { s.Candidates = []string{strings.Repeat("c", MaxCandidateBytes+1)} }},
		{"last candidate 513 bytes", func(s *Signal) {
			s.Candidates = []string{testHost, strings.Repeat("c", MaxCandidateBytes+1)}
		}},
		{"candidate 65536 bytes", func(s *Signal) { s.Candidates = []string{strings.Repeat("c", 1<<16)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mod(&s)
			b, err := AppendSignal([]byte{1}, s)
			require.ErrorIs(t, err, ErrLong)
			require.Nil(t, b)
		})
	}
}

func TestSignalRejects(t *testing.T) {
	enc := func(s Signal) []byte {
		b, err := AppendSignal(nil, s)
		require.NoError(t, err)
		return b
	}
	sigs := testSignals()
	offer := enc(sigs["offer"])
	empty := enc(sigs["answer empty strings"]) // 15 bytes: the smallest message
	cands := enc(sigs["candidates two"])
	with := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	// head is the 12 fixed bytes of a Candidates message without strings.
	head := append([]byte{SignalVersion, SignalCandidates}, testSession[:]...)
	head = append(head, 0, 0)
	withCount := func(n int, c []byte) []byte {
		b := append(bytes.Clone(head), 0, 0, byte(n))
		for range n {
			b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
			b = append(b, c...)
		}
		return b
	}
	pwdAt := 13 + len(testUfrag) // offset of the pwd length byte in offer
	countAt := len(offer) - 1    // offset of the candidate count in offer
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"nil", nil, ErrShort},
		{"1 byte", []byte{SignalVersion}, ErrShort},
		{"13 bytes", empty[:13], ErrShort},
		{"14 bytes (no candidate count)", empty[:14], ErrShort},
		{"version 0", with(offer, 0, 0), ErrVersion},
		{"version 2", with(offer, 0, 2), ErrVersion},
		{"version 0xFF", with(offer, 0, 0xFF), ErrVersion},
		{"kind 0", with(offer, 1, 0), ErrMalformed},
		{"kind 6", with(offer, 1, 6), ErrMalformed},
		{"kind 0xFF", with(offer, 1, 0xFF), ErrMalformed},
		{"ufrag length past end", with(empty, 12, 3), ErrMalformed},
		{"ufrag truncated", offer[:13+len(testUfrag)-1], ErrMalformed},
		{"pwd length missing", offer[:pwdAt], ErrMalformed},
		{"pwd length past end", with(offer, pwdAt, byte(len(testPwd)+2)), ErrMalformed},
		{"pwd truncated", offer[:countAt-1], ErrMalformed},
		{"candidate count missing", offer[:countAt], ErrMalformed},
		{"candidate count past end", with(offer, countAt, 1), ErrMalformed},
		{"33 candidates", withCount(MaxCandidates+1, []byte("c")), ErrMalformed},
		{"255 candidates", withCount(255, nil), ErrMalformed},
		{"candidate 513 bytes", withCount(1, bytes.Repeat([]byte("c"), MaxCandidateBytes+1)), ErrMalformed},
		{"candidate 65535 bytes", withCount(1, bytes.Repeat([]byte("c"), 0xFFFF)), ErrMalformed},
		{"candidate length 1 byte", append(with(empty, 14, 1), 0), ErrMalformed},
		{"candidate length past end", with(cands, 15, 0xFF), ErrMalformed},
		{"candidate truncated", cands[:len(cands)-1], ErrMalformed},
		{"second candidate missing", with(cands, 14, 3), ErrMalformed},
		{"trailing byte", append(bytes.Clone(offer), 0), ErrMalformed},
		{"trailing byte after candidates", append(bytes.Clone(cands), 'x'), ErrMalformed},
		{"fewer candidates than data", with(cands, 14, 1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSignal(tt.b)
			if tt.err == nil {
				require.Error(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
	// Every proper prefix of a valid message is an error.
	for name, s := range sigs {
		b := enc(s)
		for n := range len(b) {
			_, err := ParseSignal(b[:n])
			require.Error(t, err, "%s: prefix of %d bytes", name, n)
		}
	}
}

func TestRelayMsg(t *testing.T) {
	tests := []struct {
		name string
		m    RelayMsg
		want []byte
	}{
		{"request", RelayMsg{Kind: RelayRequest}, []byte{1, 1}},
		{"none", RelayMsg{Kind: RelayNone}, []byte{1, 3}},
		{"offer", RelayMsg{Kind: RelayOffer, Port: 3478, Username: "1700003600", Password: "pw"},
			[]byte("\x01\x02\x0d\x96\x0a1700003600\x02pw")},
		{"offer port 1 empty strings", RelayMsg{Kind: RelayOffer, Port: 1}, []byte{1, 2, 0, 1, 0, 0}},
		{"offer port 65535", RelayMsg{Kind: RelayOffer, Port: 65535, Username: "u", Password: "p"},
			[]byte{1, 2, 0xFF, 0xFF, 1, 'u', 1, 'p'}},
		{"offer max strings", RelayMsg{Kind: RelayOffer, Port: 9, Username: strings.Repeat("u", 255), Password: strings.Repeat("p", 255)},
			cat([]byte{1, 2, 0, 9, 255}, bytes.Repeat([]byte("u"), 255), []byte{255}, bytes.Repeat([]byte("p"), 255))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendRelayMsg([]byte{0xEE}, tt.m)
			require.NoError(t, err)
			require.Equal(t, append([]byte{0xEE}, tt.want...), b)
			got, err := ParseRelayMsg(b[1:])
			require.NoError(t, err)
			require.Equal(t, tt.m, got)
		})
	}
	// Request and None carry nothing else: other fields are not encoded.
	for _, k := range []byte{RelayRequest, RelayNone} {
		t.Run(fmt.Sprintf("kind %d ignores fields", k), func(t *testing.T) {
			b, err := AppendRelayMsg(nil, RelayMsg{Kind: k, Port: 3478, Username: "u", Password: "p"})
			require.NoError(t, err)
			require.Equal(t, []byte{SignalVersion, k}, b)
		})
	}
}

func TestRelayMsgAppendErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	for name, m := range map[string]RelayMsg{
		"username 256": {Kind: RelayOffer, Port: 1, Username: long},
		"password 256": {Kind: RelayOffer, Port: 1, Password: long},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := AppendRelayMsg(nil, m)
			require.ErrorIs(t, err, ErrLong)
			require.Nil(t, b)
		})
	}
}

func TestRelayMsgRejects(t *testing.T) {
	offer, err := AppendRelayMsg(nil, RelayMsg{Kind: RelayOffer, Port: 3478, Username: "1700003600", Password: "pw"})
	require.NoError(t, err)
	with := func(i int, v byte) []byte {
		b := bytes.Clone(offer)
		b[i] = v
		return b
	}
	const plenAt = 5 + len("1700003600") // offset of the password length byte
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"nil", nil, ErrShort},
		{"1 byte", []byte{SignalVersion}, ErrShort},
		{"version 0", []byte{0, RelayRequest}, ErrVersion},
		{"version 2", []byte{2, RelayRequest}, ErrVersion},
		{"offer version 2", with(0, 2), ErrVersion},
		{"kind 0", []byte{SignalVersion, 0}, ErrMalformed},
		{"kind 4", []byte{SignalVersion, 4}, ErrMalformed},
		{"kind 0xFF", []byte{SignalVersion, 0xFF}, ErrMalformed},
		{"request trailing byte", []byte{SignalVersion, RelayRequest, 0}, ErrMalformed},
		{"none trailing byte", []byte{SignalVersion, RelayNone, 0}, ErrMalformed},
		{"offer without fields", []byte{SignalVersion, RelayOffer}, ErrMalformed},
		{"offer port truncated", offer[:3], ErrMalformed},
		{"offer username length missing", offer[:4], ErrMalformed},
		{"offer username length past end", with(4, 200), ErrMalformed},
		{"offer username truncated", offer[:plenAt-1], ErrMalformed},
		{"offer password length missing", offer[:plenAt], ErrMalformed},
		{"offer password length past end", with(plenAt, 3), ErrMalformed},
		{"offer password truncated", offer[:len(offer)-1], ErrMalformed},
		{"offer trailing byte", append(bytes.Clone(offer), 0), ErrMalformed},
		{"offer zero port", append([]byte{1, 2, 0, 0}, offer[4:]...), ErrMalformed},
		{"offer zero port empty strings", []byte{1, 2, 0, 0, 0, 0}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRelayMsg(tt.b)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

// docVector returns the bytes of the example in docs/PROTOCOL.md whose code
// block starts with the line title: the hex bytes of each line up to the
// first double space (the rest of a line is commentary).
func docVector(t *testing.T, title string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	require.NoError(t, err)
	lines := strings.Split(string(doc), "\n")
	var out []byte
	found := 0
	for i, l := range lines {
		if l != title || i == 0 || !strings.HasPrefix(lines[i-1], "```") {
			continue
		}
		found++
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "```") {
				break
			}
			if j := strings.Index(l, "  "); j >= 0 {
				l = l[:j]
			}
			for _, f := range strings.Fields(l) {
				require.Len(t, f, 2, "%s: %q is not one hex byte", title, f)
				v, err := hex.DecodeString(f)
				require.NoError(t, err, title)
				out = append(out, v...)
			}
		}
	}
	require.Equal(t, 1, found, "docs/PROTOCOL.md has one code block titled %q", title)
	require.Contains(t, title, fmt.Sprintf("(%d bytes)", len(out)), "the title states the size")
	return out
}

// checkDocVector checks that want encodes to the bytes of the example titled
// title in docs/PROTOCOL.md, and that those bytes decode to want.
func checkDocVector[T any](t *testing.T, title string, want T, enc func([]byte, T) ([]byte, error), dec func([]byte) (T, error)) T {
	t.Helper()
	b, err := enc(nil, want)
	require.NoError(t, err)
	doc := docVector(t, title)
	require.Equal(t, b, doc)
	got, err := dec(doc)
	require.NoError(t, err)
	require.Equal(t, want, got)
	return got
}

// TestSignalProtocolExample checks the worked examples of docs/PROTOCOL.md
// (§12.10) byte for byte against the encoders.
func TestSignalProtocolExample(t *testing.T) {
	t.Run("offer", func(t *testing.T) {
		want := Signal{Kind: SignalOffer, Session: testSession, Flags: SignalFlagRelay, Ufrag: testUfrag, Pwd: testPwd}
		checkDocVector(t, "Signal Offer (63 bytes)", want, AppendSignal, ParseSignal)
	})
	t.Run("candidates", func(t *testing.T) {
		// The candidate string is what pion/ice's Candidate.Marshal gives.
		c, err := ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{Network: "udp",
			Address: "203.0.113.7", Port: 50123, Component: 1, RelAddr: "192.0.2.1", RelPort: 40000})
		require.NoError(t, err)
		require.Equal(t, testSrflx, c.Marshal())
		h, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: "192.0.2.1", Port: 40000, Component: 1})
		require.NoError(t, err)
		require.Equal(t, testHost, h.Marshal())

		want := Signal{Kind: SignalCandidates, Session: testSession, Candidates: []string{c.Marshal()}}
		got := checkDocVector(t, "Signal Candidates (100 bytes)", want, AppendSignal, ParseSignal)
		back, err := ice.UnmarshalCandidate(got.Candidates[0])
		require.NoError(t, err)
		require.True(t, c.Equal(back))
	})
	t.Run("close", func(t *testing.T) {
		want := Signal{Kind: SignalClose}
		checkDocVector(t, "Signal Close (15 bytes)", want, AppendSignal, ParseSignal)
	})
	t.Run("relay offer", func(t *testing.T) {
		// TURN REST credentials: password = base64(HMAC-SHA1(secret, username)).
		const user = "1700003600"
		mac := hmac.New(sha1.New, []byte("p2psock example secret"))
		mac.Write([]byte(user))
		pw := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		want := RelayMsg{Kind: RelayOffer, Port: 3478, Username: user, Password: pw}
		checkDocVector(t, "Relay Offer (44 bytes)", want, AppendRelayMsg, ParseRelayMsg)
	})
}
