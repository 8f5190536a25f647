package main

import (
	"fmt"
	"io/fs"
	"os"
)

// dataDirMode is the permission of the data directory and of the NATS
// store inside it: the SQLite database, the JetStream stream files and the
// dev secrets are personal data or keys, for the server's user only.
const dataDirMode fs.FileMode = 0o700

// privateDir creates dir (and its parents) as dataDirMode and tightens it
// when it exists already: a data dir made by an older release was 0750.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return err
	}
	if err := os.Chmod(dir, dataDirMode); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}
