package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceHeader(t *testing.T) {
	h := ServiceHeader{Kind: NamedCall, Name: HashName("chat")}
	b := AppendServiceHeader(nil, h, []byte("hi"))
	require.Len(t, b, ServiceHeaderLen+2)
	got, data, err := ParseServiceHeader(b)
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, []byte("hi"), data)

	_, _, err = ParseServiceHeader(b[:ServiceHeaderLen-1])
	require.ErrorIs(t, err, ErrShort)
	b[0] = NamedPacket + 1
	_, _, err = ParseServiceHeader(b)
	require.ErrorIs(t, err, ErrMalformed)
	require.NotEqual(t, HashName("chat"), HashName("Chat"))
	require.NotEqual(t, HashName(""), HashName("chat"))
}

func TestNamedReply(t *testing.T) {
	st, data, err := ParseNamedReply([]byte{NamedError, 'x'})
	require.NoError(t, err)
	require.Equal(t, NamedError, st)
	require.Equal(t, []byte("x"), data)
	_, _, err = ParseNamedReply(nil)
	require.ErrorIs(t, err, ErrShort)
	_, _, err = ParseNamedReply([]byte{NamedBusy + 1})
	require.ErrorIs(t, err, ErrMalformed)
}

func TestMaxRoutedFragments(t *testing.T) {
	require.Equal(t, FragmentCount(MaxMessage), FragmentCount(MaxSealed),
		"room for a service header and sealing takes no more fragments")
}

func FuzzParseServiceHeader(f *testing.F) {
	f.Add(AppendServiceHeader(nil, ServiceHeader{Kind: NamedMessage, Name: HashName("a")}, []byte("x")))
	f.Add([]byte{NamedPacket})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, data, err := ParseServiceHeader(b)
		if err != nil {
			return
		}
		require.Equal(t, b, AppendServiceHeader(nil, h, data))
	})
}

func FuzzParseNamedReply(f *testing.F) {
	f.Add([]byte{NamedOK, 1, 2})
	f.Add([]byte{NamedError})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, data, err := ParseNamedReply(b)
		if err != nil {
			return
		}
		require.Equal(t, b, append([]byte{st}, data...))
	})
}
