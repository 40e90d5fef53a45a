package lan

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAnnouncementRoundTrip(t *testing.T) {
	a := Announcement{Network: NetworkHash("x"), ID: [32]byte{1, 2, 3}}
	b := a.Append(nil)
	require.Len(t, b, AnnouncementLen)
	got, err := Parse(b)
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.NotEqual(t, NetworkHash("x"), NetworkHash("y"))
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"short":     b[:AnnouncementLen-1],
		"long":      append(append([]byte(nil), b...), 0),
		"bad magic": append([]byte("p2psock\x02"), b[8:]...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(bad)
			require.ErrorIs(t, err, ErrNotAnnouncement)
		})
	}
}

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	a, err := Register(dir, "net", netip.MustParseAddrPort("127.0.0.1:1000"))
	require.NoError(t, err)
	b, err := Register(dir, "net", netip.MustParseAddrPort("127.0.0.1:2000"))
	require.NoError(t, err)
	other, err := Register(dir, "other", netip.MustParseAddrPort("127.0.0.1:3000"))
	require.NoError(t, err)
	defer other.Close()
	require.Equal(t, []string{"127.0.0.1:2000"}, a.Peers())
	require.Equal(t, []string{"127.0.0.1:1000"}, b.Peers())

	// An entry of a process that is gone is dropped; garbage is ignored.
	netDir := filepath.Dir(a.file)
	require.NoError(t, os.WriteFile(filepath.Join(netDir, "2147483646-5"), []byte("127.0.0.1:5\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(netDir, "junk"), []byte("x"), 0o600))
	require.Equal(t, []string{"127.0.0.1:2000"}, a.Peers())
	_, err = os.Stat(filepath.Join(netDir, "2147483646-5"))
	require.True(t, os.IsNotExist(err))

	require.NoError(t, b.Close())
	require.Empty(t, a.Peers())
	require.NoError(t, a.Close())
}

func FuzzParse(f *testing.F) {
	f.Add(Announcement{Network: NetworkHash("p2psock"), ID: [32]byte{9}}.Append(nil))
	f.Add([]byte("p2psock\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Parse(b)
		if err == nil {
			require.Equal(t, b, a.Append(nil))
		}
	})
}
