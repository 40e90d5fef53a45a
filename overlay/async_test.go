package overlay

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// asyncOverlay is an overlay with only the tables of answers, for the
// tests of their bounds.
func asyncOverlay(duplicates, share int) *Overlay {
	o := &Overlay{cfg: Config{Duplicates: duplicates, SourceShare: share}}
	o.answers = newAnswers(duplicates, share, &o.ctr.forgotten)
	return o
}

// handOverAt hands the i-th message of origin to o's tables (without a
// handler) and reports whether it was taken.
func handOverAt(o *Overlay, origin ID, i int) (msgKey, bool) {
	k := msgKey{origin: origin, msgID: [16]byte{byte(i), byte(i >> 8), byte(i >> 16)}}
	o.mu.Lock()
	defer o.mu.Unlock()
	return k, o.pendLocked(k)
}

// answerAt answers the pending message k from origin with reply.
func answerAt(o *Overlay, k msgKey, origin ID, reply []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unpendLocked(k) {
		o.rememberLocked(k, origin, reply)
	}
}

// TestAsyncAnswersBounded: the answers an asynchronous service remembers
// (to answer retransmissions without running its handler again) are
// bounded in number, Config.Duplicates (the oldest answered is forgotten,
// and counted; a new message is refused while the pending ones fill the
// bound), and in bytes, answerBytes (the oldest replies are dropped first).
func TestAsyncAnswersBounded(t *testing.T) {
	const max = 4
	o := asyncOverlay(max, 1)
	var origin ID

	var pending []msgKey
	for i := range max {
		k, ok := handOverAt(o, origin, i)
		require.True(t, ok)
		pending = append(pending, k)
	}
	_, ok := handOverAt(o, origin, max)
	require.False(t, ok, "every slot is pending")
	require.Zero(t, o.ctr.forgotten.Load())

	for _, k := range pending {
		answerAt(o, k, origin, []byte("r"))
	}
	for i := range 3 * max {
		k, ok := handOverAt(o, origin, max+i)
		require.True(t, ok)
		answerAt(o, k, origin, []byte("r"))
		require.LessOrEqual(t, o.answers.done.len(), max)
	}
	require.EqualValues(t, 3*max, o.ctr.forgotten.Load())
	_, oldest := o.answers.done.get(pending[0])
	require.False(t, oldest, "the oldest answer was forgotten")

	// Replies of MaxReply bytes: the bytes remembered stay within
	// answerBytes, and the oldest replies go first.
	o = asyncOverlay(1<<20, 1)
	var keys []msgKey
	for i := range 2 * answerBytes / MaxReply {
		k, ok := handOverAt(o, origin, i)
		require.True(t, ok)
		answerAt(o, k, origin, make([]byte, MaxReply))
		keys = append(keys, k)
		require.LessOrEqual(t, o.answers.replies.cost(), answerBytes)
	}
	first, _ := o.answers.done.get(keys[0])
	require.True(t, first.forgotten)
	require.Nil(t, first.reply)
	last, _ := o.answers.done.get(keys[len(keys)-1])
	require.NotNil(t, last.reply, "the newest reply is kept")
}

// TestAsyncAnswersFair: one origin that floods an asynchronous service
// (thousands of calls, large replies, handlers that never answer) forgets
// its own answers and is refused past its share, while another origin's
// answer and reply stay remembered and its new messages are still taken.
func TestAsyncAnswersFair(t *testing.T) {
	const duplicates, share = 64, 4
	o := asyncOverlay(duplicates, share)
	var honest, flooder ID
	honest[0], flooder[0] = 1, 2

	hk, ok := handOverAt(o, honest, 0)
	require.True(t, ok)
	answerAt(o, hk, honest, []byte("honest reply"))

	for i := range 10 * duplicates { // answered, with the largest replies
		k, ok := handOverAt(o, flooder, i)
		require.True(t, ok, "an answered message frees its pending slot")
		answerAt(o, k, flooder, make([]byte, MaxReply))
	}
	refused := 0
	for i := range duplicates { // never answered
		if _, ok := handOverAt(o, flooder, 10*duplicates+i); !ok {
			refused++
		}
	}
	require.Equal(t, duplicates-duplicates/share, refused, "the flooder's pending messages stop at its share")

	a, ok := o.answers.done.get(hk)
	require.True(t, ok, "the honest answer is remembered")
	require.Equal(t, "honest reply", string(a.reply))
	require.LessOrEqual(t, o.answers.done.sourceCost(source{id: flooder}), duplicates/share)
	require.LessOrEqual(t, o.answers.replies.sourceCost(source{id: flooder}), answerBytes/share)
	_, ok = handOverAt(o, honest, 1)
	require.True(t, ok, "the honest origin's next message is taken")
}
