package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/p2psock/p2psock/internal/testnet"
)

// The demo fetches both pages, and the server greets the client by the ID
// the client node has.
func TestDemo(t *testing.T) {
	testnet.CheckLeaks(t)
	var out bytes.Buffer
	if err := runDemo(t.Context(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, &out)
	}
	s := out.String()
	if n := strings.Count(s, "HTTP/1.1 200 OK"); n != 2 {
		t.Errorf("%d pages fetched, want 2:\n%s", n, s)
	}
	m := regexp.MustCompile(`(?m)^client (\S+)$`).FindStringSubmatch(s)
	if m == nil || !strings.Contains(s, "Hello, "+m[1]+"!") {
		t.Errorf("the server does not greet the client by its ID:\n%s", s)
	}
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT`).MatchString(s) {
		t.Errorf("no time from /time:\n%s", s)
	}
}

func TestParseTarget(t *testing.T) {
	const id = "ckrmkolr3rt6yabru4tlh5iznwq6i7pisiv3wrzkce62vlknfakq"
	for in, want := range map[string]string{
		id:                          "http://" + id + "/",
		id + "/":                    "http://" + id + "/",
		id + "/time":                "http://" + id + "/time",
		"http://" + id + "/a/b?c=d": "http://" + id + "/a/b?c=d",
	} {
		if got, err := parseTarget(in); err != nil || got != want {
			t.Errorf("parseTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "example.com/", "notanid/x"} {
		if _, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) succeeded", bad)
		}
	}
}

// Command-line mistakes exit with status 2, and -h with 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"get"}, 2},
		{[]string{"get", "not-an-id"}, 2},
		{[]string{"serve", "extra"}, 2},
		{[]string{"-nosuchflag"}, 2},
		{[]string{"-demo", "extra"}, 2},
		{[]string{"-h"}, 0},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), tc.args, nil, &bytes.Buffer{}, &stderr)
		if code := exitCode(err, &stderr); code != tc.code {
			t.Errorf("http %v: exit code %d, want %d (err %v)", tc.args, code, tc.code, err)
		}
	}
}
