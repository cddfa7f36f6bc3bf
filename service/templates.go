package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/templates"
)

// ApplyTemplateInput is what applyTemplate takes.
type ApplyTemplateInput struct {
	ProjectID    string
	RepositoryID string
	TemplateID   string
	Params       []templates.Value
}

// SkippedResource is a Flux object applyTemplate did not create because
// one of that kind and name already exists in the project.
type SkippedResource struct {
	Kind          fluxgate.ResourceKind
	Name          string
	EnvironmentID string
	// Existing is the resource that is already there.
	Existing *fluxgate.GitOpsResource
}

// ApplyTemplateResult is what applyTemplate did.
type ApplyTemplateResult struct {
	// CommitSHA is the scaffolding commit, "" when nothing was committed
	// (every file existed, or the template writes no files).
	CommitSHA string
	Branch    string
	// Created lists the files the commit added; Kept the ones that
	// existed and were left as they were.
	Created []string
	Kept    []string
	// CreatedResources are the Flux objects created; SkippedResources the
	// ones that already existed.
	CreatedResources []*fluxgate.GitOpsResource
	SkippedResources []SkippedResource
}

// Templates lists the predefined templates (any signed-in user).
func (s *Service) Templates(ctx context.Context) ([]templates.Template, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	return templates.List(), nil
}

// ApplyTemplate scaffolds a template's k8s/ tree in a repository of the
// project (one commit on its default branch; existing files are kept) and
// creates the Flux objects that apply it in every GitOps environment
// (existing ones, by kind and name, are skipped). Needs create on the
// project.
//
// Errors: INVALID_INPUT (unknown template, bad parameter: field
// "params.<name>"; repository not in the project; a Flux object spec the
// repository cannot satisfy), NOT_FOUND / FORBIDDEN (project access),
// UNAVAILABLE (no Git workspace or cluster), and the Git errors of
// deployWithGitOps.
func (s *Service) ApplyTemplate(ctx context.Context, in ApplyTemplateInput) (*ApplyTemplateResult, error) {
	p, u, err := s.authorizeProject(ctx, in.ProjectID, fluxgate.ActionCreate)
	if err != nil {
		return nil, err
	}
	inst, err := templates.New(in.TemplateID, in.Params)
	if err != nil {
		return nil, err
	}
	repo, err := s.store.GetRepository(ctx, in.RepositoryID)
	if err != nil || repo.ProjectID != p.ID {
		if err != nil && fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
			return nil, err
		}
		return nil, fluxgate.InvalidField("repositoryId", "repository %s is not in the project", in.RepositoryID)
	}
	envs, err := s.store.ListEnvironments(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	var names []string
	var gitopsEnvs []*fluxgate.Environment
	for _, e := range envs {
		names = append(names, e.Name)
		if p.GitOpsEnabled && e.GitOps.Enabled {
			gitopsEnvs = append(gitopsEnvs, e)
		}
	}
	files, err := inst.Files(names)
	if err != nil {
		return nil, err
	}
	branch := repo.DefaultBranch
	if branch == "" {
		branch = "main"
	}

	// Everything that can be refused is checked before the commit: the
	// Flux objects' specs, the cluster, the Git workspace.
	ins := s.templateResources(p, repo, inst, gitopsEnvs)
	if len(ins) > maxBatch {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "the template would create %d Flux objects; at most %d at once", len(ins), maxBatch)
	}
	for _, e := range gitopsEnvs {
		// Environment permissions may refuse what the project role allows.
		if _, err := s.authorizeScope(ctx, p.ID, e.ID, fluxgate.ActionCreate); err != nil {
			return nil, err
		}
	}
	for i, r := range ins {
		if _, err := s.newResource(ctx, p, r); err != nil {
			var fe *fluxgate.Error
			if errors.As(err, &fe) && fe.Code == fluxgate.EINVALID {
				// Say which object the repository or environment cannot make.
				return nil, fluxgate.InvalidField(fmt.Sprintf("resources[%d].%s", i, fe.Field), "%s %s: %s", r.Kind, r.Name, fe.Message)
			}
			return nil, err
		}
	}
	if len(ins) > 0 {
		if _, err := s.cluster(); err != nil {
			return nil, err
		}
	}
	var remote gitrepo.Remote
	if len(files) > 0 || inst.Helm() != nil && inst.Helm().Path != "" {
		if s.git == nil {
			return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "Git editing is not configured on this server")
		}
		if remote, err = s.repoRemote(ctx, repo); err != nil {
			return nil, err
		}
	}
	if h := inst.Helm(); h != nil && h.Path != "" {
		if err := s.checkChart(ctx, remote, branch, h.Path); err != nil {
			return nil, err
		}
	}

	res := &ApplyTemplateResult{Branch: branch, Created: []string{}, Kept: []string{}}
	if len(files) > 0 {
		if err := s.scaffold(ctx, u, remote, branch, inst, files, res); err != nil {
			return nil, err
		}
	}

	// The Flux objects: those of the same kind and name already in the
	// project (its namespace) are kept and reported.
	existing, err := s.allResources(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	res.CreatedResources = []*fluxgate.GitOpsResource{}
	res.SkippedResources = []SkippedResource{}
	var create []ResourceInput
	for _, r := range ins {
		i := slices.IndexFunc(existing, func(x *fluxgate.GitOpsResource) bool { return x.Kind == r.Kind && x.Name == r.Name })
		if i >= 0 {
			res.SkippedResources = append(res.SkippedResources, SkippedResource{Kind: r.Kind, Name: r.Name, EnvironmentID: r.EnvironmentID, Existing: existing[i]})
			continue
		}
		create = append(create, r)
	}
	if len(create) > 0 {
		if res.CreatedResources, err = s.BatchCreateResources(ctx, p.ID, create); err != nil {
			return nil, err
		}
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		created := make([]string, len(res.CreatedResources))
		for i, r := range res.CreatedResources {
			created[i] = string(r.Kind) + "/" + r.Name
		}
		skipped := make([]string, len(res.SkippedResources))
		for i, r := range res.SkippedResources {
			skipped[i] = string(r.Kind) + "/" + r.Name
		}
		return s.audit(ctx, p.ID, "template.applied", "repository", repo.ID, map[string]any{
			"templateId": inst.Template.ID, "name": inst.Name(), "commitSha": res.CommitSHA, "branch": branch,
			"createdFiles": res.Created, "keptFiles": res.Kept, "createdResources": created, "skippedResources": skipped,
		})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// scaffold commits the files that do not exist yet in one commit on
// branch (creating the branch in an empty repository).
func (s *Service) scaffold(ctx context.Context, u *fluxgate.User, remote gitrepo.Remote, branch string, inst *templates.Instance, files map[string][]byte, res *ApplyTemplateResult) error {
	var created, kept []string
	edit := func(_ context.Context, head *gitrepo.Snapshot) (*gitrepo.Change, error) {
		// Called again on a new head when the push loses a race: start over.
		created, kept = nil, nil
		ch := &gitrepo.Change{Files: map[string][]byte{}}
		for p, c := range files {
			if _, ok := head.Get(p); ok {
				kept = append(kept, p)
				continue
			}
			created = append(created, p)
			ch.Files[p] = c
		}
		if len(ch.Files) == 0 {
			return nil, gitrepo.ErrNoChange
		}
		ch.Message = fmt.Sprintf("chore(templates): scaffold %s for %s\n\nCreated %d file(s) under k8s/. Applied via fluxgate by %s",
			inst.Template.ID, inst.Name(), len(created), userLabel(u))
		return ch, nil
	}
	cr, err := s.git.Commit(ctx, gitrepo.CommitRequest{
		Remote: remote, Branch: branch, Dir: "k8s",
		Author:       gitrepo.Signature{Name: userLabel(u), Email: userEmail(u)},
		Edit:         edit,
		CreateBranch: true, // an empty repository gets its first commit
	})
	switch {
	case errors.Is(err, gitrepo.ErrNoChange):
		created = nil
	case err != nil:
		return gitError("scaffold commit", err)
	default:
		res.CommitSHA = cr.SHA
	}
	sort.Strings(created)
	sort.Strings(kept)
	res.Created, res.Kept = append(res.Created, created...), append(res.Kept, kept...)
	return nil
}

// templateResources builds the Flux objects of inst for each environment.
func (s *Service) templateResources(p *fluxgate.Project, repo *fluxgate.Repository, inst *templates.Instance, envs []*fluxgate.Environment) []ResourceInput {
	var out []ResourceInput
	h := inst.Helm()
	if h != nil && h.RepositoryURL != "" && len(envs) > 0 {
		// One chart source for the whole project.
		out = append(out, ResourceInput{ProjectID: p.ID, Kind: fluxgate.KindHelmRepository, Name: inst.Name(),
			Spec: &fluxgate.HelmRepositorySpec{URL: h.RepositoryURL, Type: h.RepositoryType, Interval: "10m"}})
	}
	for _, e := range envs {
		name := inst.ObjectName(e.Name)
		interval := e.GitOps.SyncInterval
		gitSource := ResourceInput{ProjectID: p.ID, EnvironmentID: e.ID, RepositoryID: repo.ID, Kind: fluxgate.KindGitRepository, Name: name,
			Spec: &fluxgate.GitRepositorySpec{URL: repo.CloneURL, Ref: fluxgate.GitRef{Branch: envBranch(e, repo)}, Interval: interval, SecretRef: repo.GitOps.SecretRef}}
		if h != nil {
			rel := &fluxgate.HelmReleaseSpec{
				Chart: h.Chart, Version: h.Version, Values: h.Values, Interval: interval,
				Install: &fluxgate.HelmInstall{RemediationRetries: 3},
				Upgrade: &fluxgate.HelmUpgrade{RemediationRetries: 3},
			}
			if h.RepositoryURL != "" {
				rel.SourceKind, rel.SourceName = string(fluxgate.KindHelmRepository), inst.Name()
			} else {
				out = append(out, gitSource)
				rel.SourceKind, rel.SourceName = string(fluxgate.KindGitRepository), name
			}
			out = append(out, ResourceInput{ProjectID: p.ID, EnvironmentID: e.ID, RepositoryID: repo.ID, Kind: fluxgate.KindHelmRelease, Name: name, Spec: rel})
			continue
		}
		ks := &fluxgate.KustomizationSpec{
			SourceRef:       fluxgate.SourceRef{Kind: string(fluxgate.KindGitRepository), Name: name},
			Path:            envPath(e),
			Prune:           true,
			Interval:        interval,
			TargetNamespace: p.Namespace,
		}
		if hc := inst.HealthCheck(e.Name, p.Namespace); hc != nil {
			ks.HealthChecks = append(ks.HealthChecks, *hc)
		}
		for _, hc := range e.HealthChecks {
			if !slices.Contains(ks.HealthChecks, hc) {
				ks.HealthChecks = append(ks.HealthChecks, hc)
			}
		}
		out = append(out, gitSource,
			ResourceInput{ProjectID: p.ID, EnvironmentID: e.ID, RepositoryID: repo.ID, Kind: fluxgate.KindKustomization, Name: name, Spec: ks})
	}
	return out
}

// envBranch is the branch Flux follows for an environment.
func envBranch(e *fluxgate.Environment, repo *fluxgate.Repository) string {
	switch {
	case e.GitOps.GitBranch != "":
		return e.GitOps.GitBranch
	case repo.DefaultBranch != "":
		return repo.DefaultBranch
	}
	return "main"
}

// envPath is the path a Kustomization applies for an environment.
func envPath(e *fluxgate.Environment) string {
	p := strings.TrimPrefix(strings.TrimSpace(e.GitOps.GitPath), "./")
	if p == "" || p == "." {
		p = templates.OverlayPath(e.Name)
	}
	return "./" + p
}

// checkChart makes sure a chart in Git exists (its Chart.yaml) at the
// head of branch.
func (s *Service) checkChart(ctx context.Context, remote gitrepo.Remote, branch, dir string) error {
	snap, err := s.git.ReadFiles(ctx, remote, branch, dir)
	if errors.Is(err, gitrepo.ErrNotFound) {
		return fluxgate.InvalidField("params.chartPath", "branch %s has no chart at %s (the repository or branch is empty)", branch, dir)
	}
	if err != nil {
		return gitError("read chart", err)
	}
	if _, ok := snap.Get(dir + "/Chart.yaml"); !ok {
		return fluxgate.InvalidField("params.chartPath", "there is no Chart.yaml in %s on branch %s", dir, branch)
	}
	return nil
}

// allResources lists every live GitOps resource of a project.
func (s *Service) allResources(ctx context.Context, projectID string) ([]*fluxgate.GitOpsResource, error) {
	var out []*fluxgate.GitOpsResource
	page := fluxgate.Page{First: fluxgate.MaxPageSize}
	for {
		items, pi, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: projectID, Page: page})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if !pi.HasNextPage {
			return out, nil
		}
		page.After = pi.EndCursor
	}
}
