package cli

import (
	"context"
	"errors"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// RetryUnreachable calls f until it fails with anything but
// p2psock.ErrUnreachable, or ctx ends, and returns f's last error. The
// pauses between tries start at 100 ms and double up to 1 s. A node that
// joined a moment ago is not yet in every routing table, so that a request
// to it, or from it, can fail where the same request a moment later
// succeeds.
func RetryUnreachable(ctx context.Context, f func() error) error {
	pause := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !errors.Is(err, p2psock.ErrUnreachable) || ctx.Err() != nil {
			return err
		}
		if !sleep(ctx, pause) {
			return err
		}
		pause = min(2*pause, time.Second)
	}
}

// Retry calls f until it succeeds, four times at the most, with pauses of
// 200 ms, 400 ms and 800 ms in between, each try bounded by a timeout of its
// own (10 s); it returns f's last error. It does not try again after
// p2psock.ErrPeerIdentity, or once ctx has ended. A node that has just bound
// may not yet be in every routing table, so a first lookup or Connect can
// fail, in more ways than with ErrUnreachable, where the next one succeeds.
func Retry(ctx context.Context, f func(context.Context) error) error {
	const tries = 4
	pause := 200 * time.Millisecond
	var err error
	for i := range tries {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, p2psock.ErrPeerIdentity) || i == tries-1 {
			break
		}
		if !sleep(ctx, pause) {
			break
		}
		pause *= 2
	}
	return err
}

// sleep waits for d to pass or for ctx to end, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
