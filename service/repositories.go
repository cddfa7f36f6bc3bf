package service

import (
	"context"
	"net/url"
	"strings"

	"github.com/fluxgate/fluxgate"
)

// ConnectRepositoryInput is what connectRepository takes.
type ConnectRepositoryInput struct {
	ProjectID     string
	Provider      string
	FullName      string
	CloneURL      string
	DefaultBranch string
	GitOps        *RepositoryGitOpsInput
}

// RepositoryGitOpsInput is a repository's GitOps settings; empty strings
// take defaults.
type RepositoryGitOpsInput struct {
	Enabled          bool
	FluxNamespace    string
	FluxResourceName string
	SyncInterval     string
	SecretRef        string
	Timeout          string
}

// UpdateRepositoryInput changes the fields that are set.
type UpdateRepositoryInput struct {
	ID            string
	CloneURL      *string
	DefaultBranch *string
	GitOps        *RepositoryGitOpsInput
}

// repoNameFromURL derives provider and owner/name from a clone URL.
func repoNameFromURL(cloneURL string) (provider, fullName string) {
	host, p := "", ""
	if m := scpLikeURL.FindString(cloneURL); m != "" {
		at := strings.Index(cloneURL, "@")
		colon := strings.Index(cloneURL[at:], ":") + at
		host, p = cloneURL[at+1:colon], cloneURL[colon+1:]
	} else if u, err := url.Parse(cloneURL); err == nil {
		host, p = u.Hostname(), u.Path
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	switch {
	case strings.Contains(host, "github"):
		provider = "github"
	case strings.Contains(host, "gitlab"):
		provider = "gitlab"
	case strings.Contains(host, "bitbucket"):
		provider = "bitbucket"
	case host == "127.0.0.1" || host == "localhost" || host == "::1":
		provider = "local"
	default:
		provider = "git"
	}
	return provider, p
}

func (s *Service) applyRepoGitOps(r *fluxgate.Repository, p *fluxgate.Project, in *RepositoryGitOpsInput) {
	g := fluxgate.RepositoryGitOps{Enabled: p.GitOpsEnabled}
	if in != nil {
		g = fluxgate.RepositoryGitOps{Enabled: in.Enabled, FluxNamespace: in.FluxNamespace, FluxResourceName: in.FluxResourceName, SyncInterval: in.SyncInterval, SecretRef: in.SecretRef, Timeout: in.Timeout}
	}
	if g.FluxNamespace == "" {
		g.FluxNamespace = p.Namespace
	}
	if g.FluxResourceName == "" {
		name := r.FullName
		if i := strings.LastIndex(name, "/"); i >= 0 {
			name = name[i+1:]
		}
		g.FluxResourceName = dnsLabelFrom(name)
	}
	if g.SyncInterval == "" {
		g.SyncInterval = "1m"
	}
	if g.Timeout == "" {
		g.Timeout = "60s"
	}
	r.GitOps = g
}

// dnsLabelFrom lowercases and replaces what a DNS label cannot hold.
func dnsLabelFrom(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	out := strings.Trim(string(b), "-")
	if len(out) > 63 {
		out = strings.Trim(out[:63], "-")
	}
	if out == "" {
		out = "repo"
	}
	return out
}

// checkCloneURL is validateCloneURL, plus file:// URLs when the service
// allows local repositories (tests, the local development cluster).
func (s *Service) checkCloneURL(field, v string) error {
	if s.allowFileRemotes && strings.HasPrefix(v, "file:///") && len(v) > len("file:///") {
		return nil
	}
	return validateCloneURL(field, v)
}

func (s *Service) validateRepository(r *fluxgate.Repository) error {
	g := r.GitOps
	if err := firstErr(
		s.checkCloneURL("cloneUrl", r.CloneURL),
		validateLength("provider", r.Provider, 1, 50),
		validateLength("fullName", r.FullName, 1, 200),
		validateBranch("defaultBranch", r.DefaultBranch),
		validateDNSLabel("gitops.fluxNamespace", g.FluxNamespace),
		validateDNSLabel("gitops.fluxResourceName", g.FluxResourceName),
		validateDuration("gitops.syncInterval", g.SyncInterval, 10e9),
		validateDuration("gitops.timeout", g.Timeout, 1e9),
	); err != nil {
		return err
	}
	if g.SecretRef != "" {
		return validateDNSSubdomain("gitops.secretRef", g.SecretRef)
	}
	return nil
}

// ConnectRepository connects a Git repository to a project (needs create).
func (s *Service) ConnectRepository(ctx context.Context, in ConnectRepositoryInput) (*fluxgate.Repository, error) {
	p, _, err := s.authorizeProject(ctx, in.ProjectID, fluxgate.ActionCreate)
	if err != nil {
		return nil, err
	}
	if err := s.checkCloneURL("cloneUrl", in.CloneURL); err != nil {
		return nil, err
	}
	provider, fullName := repoNameFromURL(in.CloneURL)
	r := &fluxgate.Repository{ProjectID: p.ID, Provider: in.Provider, FullName: in.FullName, CloneURL: in.CloneURL, DefaultBranch: in.DefaultBranch}
	if r.Provider == "" {
		r.Provider = provider
	}
	if r.FullName == "" {
		r.FullName = fullName
	}
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	s.applyRepoGitOps(r, p, in.GitOps)
	if err := s.validateRepository(r); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateRepository(ctx, r); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "fullName", Message: "the repository " + r.FullName + " is already connected"}
			}
			return err
		}
		return s.audit(ctx, p.ID, "repository.connected", "repository", r.ID, map[string]any{"fullName": r.FullName, "cloneUrl": r.CloneURL})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Service) authorizeRepository(ctx context.Context, id string, act fluxgate.Action) (*fluxgate.Repository, *fluxgate.Project, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, nil, err
	}
	r, err := s.store.GetRepository(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p, _, err := s.authorizeProject(ctx, r.ProjectID, act)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil, nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "repository %s not found", id)
	}
	return r, p, err
}

// Repository returns a repository the caller can read.
func (s *Service) Repository(ctx context.Context, id string) (*fluxgate.Repository, error) {
	r, _, err := s.authorizeRepository(ctx, id, fluxgate.ActionRead)
	return r, err
}

// Repositories lists a project's repositories.
func (s *Service) Repositories(ctx context.Context, projectID string) ([]*fluxgate.Repository, error) {
	if _, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead); err != nil {
		return nil, err
	}
	return s.store.ListRepositories(ctx, projectID)
}

// UpdateRepository changes a repository (needs update).
func (s *Service) UpdateRepository(ctx context.Context, in UpdateRepositoryInput) (*fluxgate.Repository, error) {
	r, p, err := s.authorizeRepository(ctx, in.ID, fluxgate.ActionUpdate)
	if err != nil {
		return nil, err
	}
	changed := []string{}
	if in.CloneURL != nil {
		r.CloneURL = *in.CloneURL
		changed = append(changed, "cloneUrl")
	}
	if in.DefaultBranch != nil {
		r.DefaultBranch = *in.DefaultBranch
		changed = append(changed, "defaultBranch")
	}
	if in.GitOps != nil {
		s.applyRepoGitOps(r, p, in.GitOps)
		changed = append(changed, "gitops")
	}
	if err := s.validateRepository(r); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateRepository(ctx, r); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "repository.updated", "repository", r.ID, map[string]any{"fields": changed})
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetRepository(ctx, r.ID)
}

// DisconnectRepository soft-deletes a repository (needs delete).
func (s *Service) DisconnectRepository(ctx context.Context, id string) error {
	r, p, err := s.authorizeRepository(ctx, id, fluxgate.ActionDelete)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteRepository(ctx, r.ID, s.now().UTC()); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "repository.disconnected", "repository", r.ID, map[string]any{"fullName": r.FullName})
	})
}
