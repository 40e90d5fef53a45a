package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNATTestFrames: the filtering test's frames round-trip, a NATTest is
// larger than the probe and the answer it causes together, and bad kinds,
// states, lengths and padding are malformed.
func TestNATTestFrames(t *testing.T) {
	req := NATTest{Nonce: 0x0102030405060708, Kind: ProbeOtherIP}
	b := req.Append(nil)
	require.Len(t, b, NATTestLen-HeaderLen)
	got, err := ParseNATTest(b)
	require.NoError(t, err)
	require.Equal(t, req, got)
	require.Greater(t, NATTestLen, 2*NATProbeLen, "no amplification")

	pr := NATProbe{Nonce: 3, Kind: ProbeOtherPort, Status: ProbeSent}
	pb := pr.Append(nil)
	require.Len(t, pb, NATProbeLen-HeaderLen)
	gp, err := ParseNATProbe(pb)
	require.NoError(t, err)
	require.Equal(t, pr, gp)

	for name, body := range map[string][]byte{
		"test short":   b[:len(b)-1],
		"test long":    append(append([]byte(nil), b...), 0),
		"test kind":    func() []byte { c := append([]byte(nil), b...); c[8] = 3; return c }(),
		"test padding": func() []byte { c := append([]byte(nil), b...); c[len(c)-1] = 1; return c }(),
		"probe short":  pb[:len(pb)-1],
		"probe kind":   func() []byte { c := append([]byte(nil), pb...); c[8] = 0; return c }(),
		"probe status": func() []byte { c := append([]byte(nil), pb...); c[9] = 3; return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			if name[0] == 't' {
				_, err = ParseNATTest(body)
			} else {
				_, err = ParseNATProbe(body)
			}
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}
