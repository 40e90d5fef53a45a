package overlay

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAsyncAnswersBounded: the answers an asynchronous service remembers
// (to answer retransmissions without running its handler again) are
// bounded in number, Config.Duplicates (the oldest answered is forgotten,
// and counted; a new request is refused while every one is pending), and in
// bytes, answerBytes (the oldest replies are dropped first).
func TestAsyncAnswersBounded(t *testing.T) {
	const max = 4
	o := &Overlay{cfg: Config{Duplicates: max}, answers: answers{m: make(map[msgKey]*answer)}}
	add := func(i int) *answer {
		require.True(t, o.makeRoomLocked(), "room for answer %d", i)
		k := msgKey{msgID: [16]byte{byte(i), byte(i >> 8)}}
		a := &answer{}
		o.answers.m[k] = a
		o.answers.order = append(o.answers.order, k)
		return a
	}

	// Pending answers are never forgotten: the fifth request is refused.
	var pending []*answer
	for i := range max {
		pending = append(pending, add(i))
	}
	require.False(t, o.makeRoomLocked())
	require.Zero(t, o.ctr.forgotten.Load())

	// Answered ones make room, oldest first, and are counted.
	for _, a := range pending {
		a.done = true
	}
	for i := range 3 * max {
		a := add(max + i)
		a.done = true
		require.LessOrEqual(t, len(o.answers.m), max)
	}
	require.EqualValues(t, 3*max, o.ctr.forgotten.Load())
	_, oldest := o.answers.m[msgKey{msgID: [16]byte{0}}]
	require.False(t, oldest, "the oldest answer was forgotten")

	// Replies of MaxReply bytes: the bytes remembered stay within
	// answerBytes, and the oldest replies go first.
	o.cfg.Duplicates = 1 << 20
	var all []*answer
	for i := range 2 * answerBytes / MaxReply {
		a := add(1000 + i)
		a.done = true
		o.keepReplyLocked(a, make([]byte, MaxReply))
		all = append(all, a)
		require.LessOrEqual(t, o.answers.bytes, answerBytes)
	}
	require.True(t, all[0].forgotten)
	require.Nil(t, all[0].reply)
	require.NotNil(t, all[len(all)-1].reply, "the newest reply is kept")
}
