package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/service"
)

// openGit opens the Git workspace of UI-first deploys (<data-dir>/git,
// serialized across replicas by the database's lock) and the sealer of
// repository push credentials. In development mode the credential key is
// generated once into the data dir; otherwise without
// FLUXGATE_CREDENTIAL_KEY push credentials cannot be stored.
func (m *Main) openGit() ([]service.Option, error) {
	c := &m.Config
	ws, err := gitrepo.New(gitrepo.Options{
		Dir:       filepath.Join(c.DataDir, "git"),
		Locker:    m.db,
		Committer: gitrepo.Signature{Name: "fluxgate", Email: "fluxgate@localhost"},
		Logger:    m.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("git workspace: %w", err)
	}
	m.closers = append(m.closers, func(context.Context) error { return ws.Close() })
	opts := []service.Option{service.WithGit(ws)}
	key := c.CredentialKey
	if key == "" && c.DevMode() {
		if key, err = persistentSecret(c.DataDir, "credential-key"); err != nil {
			return nil, err
		}
	}
	if key == "" {
		m.logger.Warn("no FLUXGATE_CREDENTIAL_KEY: repository push credentials cannot be stored")
		return opts, nil
	}
	k, err := gitrepo.ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	sealer, err := gitrepo.NewSealer(k)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return append(opts, service.WithCredentialSealer(sealer)), nil
}
