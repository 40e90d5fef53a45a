package overlay

// Hooks for the tests of package overlay_test.

// SetSealing turns the sealing of the messages o sends on (the default) or
// off.
func (o *Overlay) SetSealing(on bool) { o.sealer.off.Store(!on) }

// SpoilSealed makes o flip a bit of every payload it seals, before it signs
// the message: the message is correctly signed but does not open.
func (o *Overlay) SpoilSealed(on bool) { o.sealer.spoil.Store(on) }
