package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/p2psock/p2psock/p2psock"
)

// IdentityFile returns file if it is not "", and otherwise where program app
// keeps its identity name by default: in the directory app of the user's
// configuration directory (os.UserConfigDir), so that its node keeps its ID
// from one run to the next. It fails when there is no such directory.
func IdentityFile(file, app, name string) (string, error) {
	if file != "" {
		return file, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no identity file (-i) and no config directory: %w", err)
	}
	return filepath.Join(dir, app, name), nil
}

// LoadIdentity loads the identity in IdentityFile(file, app, name), and
// creates the file if it does not exist.
func LoadIdentity(file, app, name string) (*p2psock.Identity, error) {
	path, err := IdentityFile(file, app, name)
	if err != nil {
		return nil, err
	}
	return p2psock.LoadOrCreateIdentity(path)
}
