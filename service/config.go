package service

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

// EnvironmentConfig is an environment's manifests at the head of its
// branch: the files, the revision they came from and the structured view
// of each Deployment.
type EnvironmentConfig struct {
	Revision    string
	Branch      string
	Path        string
	Files       []gitrepo.File
	Deployments []gitrepo.DeploymentAt
	// LatestImages maps an image name (no tag) to the newest image the
	// project's ImagePolicy for it selected, e.g. "acme/web" →
	// "acme/web:1.4.2": what the deploy form offers.
	LatestImages map[string]string
}

// EnvironmentConfig reads an environment's manifests (needs read).
func (s *Service) EnvironmentConfig(ctx context.Context, envID string) (*EnvironmentConfig, error) {
	e, _, _, err := s.authorizeEnvironment(ctx, envID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	t, err := s.gitTarget(ctx, e)
	if err != nil {
		return nil, err
	}
	snap, err := s.git.ReadFiles(ctx, t.remote, t.branch, t.path)
	if err != nil {
		return nil, gitError("read manifests", err)
	}
	latest, err := s.latestImages(ctx, e.ProjectID)
	if err != nil {
		return nil, err
	}
	return &EnvironmentConfig{Revision: snap.Revision, Branch: t.branch, Path: snap.Dir, Files: snap.Files, Deployments: gitrepo.DeploymentViews(snap), LatestImages: latest}, nil
}

// latestImages reads the project's ImagePolicies (their status, kept
// current by the cluster watch) and maps the image each one's
// ImageRepository scans to the latest image it selected.
func (s *Service) latestImages(ctx context.Context, projectID string) (map[string]string, error) {
	out := map[string]string{}
	pols, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: projectID, Kind: fluxgate.KindImagePolicy, Page: fluxgate.Page{First: 200}})
	if err != nil || len(pols) == 0 {
		return out, err
	}
	repos, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: projectID, Kind: fluxgate.KindImageRepository, Page: fluxgate.Page{First: 200}})
	if err != nil {
		return nil, err
	}
	images := map[string]string{} // ImageRepository name → image
	for _, r := range repos {
		var spec fluxgate.ImageRepositorySpec
		if json.Unmarshal(r.Spec, &spec) == nil {
			images[r.Name] = spec.Image
		}
	}
	for _, p := range pols {
		var spec fluxgate.ImagePolicySpec
		if json.Unmarshal(p.Spec, &spec) != nil || p.LastAppliedRevision == "" {
			continue
		}
		if img := images[spec.ImageRepository]; img != "" {
			out[img] = p.LastAppliedRevision
		}
	}
	return out, nil
}

// ImageName is an image reference without its tag or digest.
func ImageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// ValidateConfig checks one YAML document set: syntax (line, column),
// Kubernetes object shape, strict decoding of built-in kinds (paths of
// unknown or mistyped fields). Needs an authenticated caller.
func (s *Service) ValidateConfig(ctx context.Context, yaml string) ([]yamledit.Issue, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	return yamledit.Validate([]byte(yaml)), nil
}

// ConfigChangeInput is an edit of an environment's manifests made on
// BaseRevision: either new file contents or a structured change of one
// Deployment.
type ConfigChangeInput struct {
	EnvironmentID string
	// BaseRevision is the revision the editor loaded; empty means the head.
	BaseRevision string
	Files        map[string][]byte
	Change       *yamledit.DeploymentEdit
	// Message and Description are the commit's (commitConfigChanges only).
	Message     string
	Description string
}

// configChange authorizes and turns an input into a gitrepo.ConfigChange
// made on the base revision.
func (s *Service) configChange(ctx context.Context, in ConfigChangeInput, act fluxgate.Action) (*fluxgate.Environment, *fluxgate.Project, *fluxgate.User, *gitTarget, gitrepo.ConfigChange, error) {
	var cc gitrepo.ConfigChange
	e, p, u, err := s.authorizeEnvironment(ctx, in.EnvironmentID, act)
	if err != nil {
		return nil, nil, nil, nil, cc, err
	}
	if (len(in.Files) > 0) == (in.Change != nil) {
		return nil, nil, nil, nil, cc, fluxgate.InvalidField("files", "give either files or a structured change")
	}
	t, err := s.gitTarget(ctx, e)
	if err != nil {
		return nil, nil, nil, nil, cc, err
	}
	var base *gitrepo.Snapshot
	if in.BaseRevision == "" {
		base, err = s.git.ReadFiles(ctx, t.remote, t.branch, t.path)
	} else {
		base, err = s.git.ReadFilesAt(ctx, t.remote, t.branch, in.BaseRevision, t.path)
	}
	if err != nil {
		if errors.Is(err, gitrepo.ErrNotFound) && in.BaseRevision != "" {
			return nil, nil, nil, nil, cc, fluxgate.InvalidField("baseRevision", "revision %s is not on branch %s", in.BaseRevision, t.branch)
		}
		return nil, nil, nil, nil, cc, gitError("read base revision", err)
	}
	files := in.Files
	if in.Change != nil {
		if err := in.Change.Validate(); err != nil {
			return nil, nil, nil, nil, cc, gitError("validate change", err)
		}
		if in.Change.Empty() {
			return nil, nil, nil, nil, cc, fluxgate.Errorf(fluxgate.EINVALID, "nothing to change: the change sets no field")
		}
		if files, err = gitrepo.StructuredChange(base, *in.Change); err != nil {
			return nil, nil, nil, nil, cc, gitError("apply structured change", err)
		}
	}
	cc = gitrepo.ConfigChange{Base: base, Files: files, Message: in.Message, Description: in.Description}
	return e, p, u, t, cc, nil
}

// PreviewConfigChange shows what committing a change would do: the diff
// against the branch head, the field-level changes, the impact on pods
// and, when the head moved and the change overlaps, the conflicts (needs
// read).
func (s *Service) PreviewConfigChange(ctx context.Context, in ConfigChangeInput) (*gitrepo.Preview, error) {
	_, _, _, t, cc, err := s.configChange(ctx, in, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	head, err := s.git.ReadFiles(ctx, t.remote, t.branch, t.path)
	if err != nil {
		return nil, gitError("read head", err)
	}
	pv, err := gitrepo.PreviewChange(cc, head)
	if err != nil {
		return nil, gitError("preview", err)
	}
	return pv, nil
}

// CommitConfigResult is either a commit (with the deployment it started)
// or the conflicts that kept anything from being written.
type CommitConfigResult struct {
	CommitSHA  string
	Deployment *fluxgate.Deployment
	Conflicts  []gitrepo.Conflict
}

// CommitConfigChanges commits an edit of the environment's manifests
// (needs update), merged with what changed on the branch since the base
// revision. Overlapping changes give Conflicts and write nothing. A commit
// records a gitops-ui deployment and asks Flux to reconcile at once.
// Environments that require approval get a deployment awaiting approval
// holding the change, and nothing is committed (ApproveDeployment merges
// it onto the head of the branch then).
func (s *Service) CommitConfigChanges(ctx context.Context, in ConfigChangeInput) (*CommitConfigResult, error) {
	if strings.TrimSpace(in.Message) == "" {
		return nil, fluxgate.InvalidField("message", "the commit message is empty")
	}
	e, p, u, t, cc, err := s.configChange(ctx, in, fluxgate.ActionUpdate)
	if err != nil {
		return nil, err
	}
	if e.Approval.Required {
		return s.holdConfigChange(ctx, e, p, u, in, cc)
	}
	res, err := s.git.Commit(ctx, gitrepo.CommitRequest{
		Remote: t.remote, Branch: t.branch, Dir: t.path,
		Author: gitrepo.Signature{Name: userLabel(u), Email: userEmail(u)},
		Edit:   gitrepo.ConfigEdit(cc),
	})
	var ce *gitrepo.ConflictError
	if errors.As(err, &ce) {
		return &CommitConfigResult{Conflicts: ce.Conflicts}, nil
	}
	if err != nil {
		return nil, gitError("commit config", err)
	}
	change, err := json.Marshal(map[string]any{"baseRevision": in.BaseRevision, "files": res.Files, "structured": in.Change})
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	d := &fluxgate.Deployment{
		ProjectID: p.ID, EnvironmentID: e.ID, Strategy: "rolling", Method: fluxgate.MethodGitOpsUI,
		Message: strings.TrimSpace(in.Message), DeployedBy: u.ID, Change: change, StartedAt: now,
	}
	markCommitted(d, res, now)
	if err := s.recordDeployment(ctx, d, "config.committed"); err != nil {
		return nil, err
	}
	s.handToFlux(ctx, e, d)
	return &CommitConfigResult{CommitSHA: res.SHA, Deployment: d}, nil
}
