package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
	"github.com/fluxgate/fluxgate/k8s"
)

// WithGit sets the Git workspace UI-first deploys and the config editor
// commit through. Without it they answer UNAVAILABLE.
func WithGit(ws *gitrepo.Workspace) Option { return func(s *Service) { s.git = ws } }

// WithCredentialSealer sets how repository push credentials are sealed at
// rest (AES-GCM, key from FLUXGATE_CREDENTIAL_KEY). Without it they cannot
// be stored or used.
func WithCredentialSealer(sl *gitrepo.Sealer) Option { return func(s *Service) { s.sealer = sl } }

// WithLocalRepositories lets repositories use file:// clone URLs (tests and
// the local development cluster). Production leaves it off.
func WithLocalRepositories() Option { return func(s *Service) { s.allowFileRemotes = true } }

// DeployInput is a UI-first deploy: the fields of the deploy form.
type DeployInput struct {
	EnvironmentID string
	// Deployment names the Deployment; empty selects the only one under
	// the environment's path (required for a direct deploy).
	Deployment string
	// Container names the container; empty selects the first.
	Container string
	Image     *string
	Replicas  *int32
	Env       []yamledit.EnvVar
	RemoveEnv []string
}

// DeployResult is the deployment a deploy recorded and a sentence for the
// user.
type DeployResult struct {
	Deployment *fluxgate.Deployment
	Message    string
}

// gitTarget is where an environment's manifests live.
type gitTarget struct {
	repo   *fluxgate.Repository
	remote gitrepo.Remote
	branch string
	path   string
}

// gitTarget resolves an environment's repository (the one of its
// GitRepository resource, else the project's first), branch and path, and
// opens the repository's push credentials.
func (s *Service) gitTarget(ctx context.Context, e *fluxgate.Environment) (*gitTarget, error) {
	if s.git == nil {
		return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "Git editing is not configured on this server")
	}
	var repo *fluxgate.Repository
	srcs, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: e.ProjectID, EnvironmentID: e.ID, Kind: fluxgate.KindGitRepository, Page: fluxgate.Page{First: 200}})
	if err != nil {
		return nil, err
	}
	for _, r := range srcs {
		if r.RepositoryID == nil {
			continue
		}
		if repo, err = s.store.GetRepository(ctx, *r.RepositoryID); err == nil {
			break
		} else if fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
			return nil, err
		}
	}
	if repo == nil {
		repos, err := s.store.ListRepositories(ctx, e.ProjectID)
		if err != nil {
			return nil, err
		}
		if len(repos) == 0 {
			return nil, fluxgate.InvalidField("environmentId", "the project has no Git repository connected")
		}
		repo = repos[0]
	}
	t := &gitTarget{repo: repo, branch: e.GitOps.GitBranch, path: strings.TrimPrefix(e.GitOps.GitPath, "./")}
	if t.branch == "" {
		t.branch = repo.DefaultBranch
	}
	if t.branch == "" {
		t.branch = "main"
	}
	if t.path == "" {
		t.path = "."
	}
	if t.remote, err = s.repoRemote(ctx, repo); err != nil {
		return nil, err
	}
	return t, nil
}

// repoRemote opens a repository's push credentials.
func (s *Service) repoRemote(ctx context.Context, repo *fluxgate.Repository) (gitrepo.Remote, error) {
	r := gitrepo.Remote{URL: repo.CloneURL}
	sealed, err := s.store.GetRepositoryCredentials(ctx, repo.ID)
	if err != nil {
		return r, err
	}
	if len(sealed) > 0 {
		if s.sealer == nil {
			return r, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "the repository's credentials cannot be opened: no credential key is configured")
		}
		if r.Auth, err = s.sealer.OpenAuth(sealed); err != nil {
			return r, fmt.Errorf("open credentials of repository %s: %w", repo.ID, err)
		}
	}
	return r, nil
}

// gitError maps gitrepo's errors to domain codes (docs/gitops-editing.md).
// *gitrepo.ConflictError is passed through for callers that return it as
// data; elsewhere it becomes CONFLICT.
func gitError(op string, err error) error {
	var (
		inv *gitrepo.InvalidInputError
		val *gitrepo.ValidationError
		ce  *gitrepo.ConflictError
		fe  *fluxgate.Error
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return err
	case errors.As(err, &inv):
		return fluxgate.InvalidField(inv.Field, "%s", inv.Error())
	case errors.As(err, &val):
		return fluxgate.InvalidField("yaml", "%s", val.Error())
	case errors.Is(err, gitrepo.ErrNoChange):
		return fluxgate.Errorf(fluxgate.EINVALID, "nothing to change: the manifests already say this")
	case errors.As(err, &ce):
		return &fluxgate.Error{Code: fluxgate.ECONFLICT, Message: ce.Error()}
	case errors.Is(err, gitrepo.ErrNotFound):
		return fluxgate.Errorf(fluxgate.ENOTFOUND, "%s", err.Error())
	case errors.Is(err, gitrepo.ErrAuth):
		return fluxgate.Errorf(fluxgate.EINVALID, "the repository refused the credentials")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	// gitrepo errors are already redacted; keep the operation for the log.
	return fmt.Errorf("%s: %w", op, err)
}

// DeployWithGitOps turns a deploy form into a commit on the environment's
// branch (author: the caller; committer: fluxgate), records a gitops-ui
// deployment with the commit SHA, and asks Flux to reconcile at once.
//
// Environments that require approval get a deployment awaiting approval
// and no commit (ApproveDeployment commits it, service/approvals.go). Projects
// without GitOps get a direct server-side apply, recorded as manual.
//
// Needs sync on the environment (an environment "deploy" permission grants
// it). Errors: INVALID_INPUT (bad field, nothing to change, credentials
// refused), NOT_FOUND (no such Deployment or container), UNAVAILABLE.
func (s *Service) DeployWithGitOps(ctx context.Context, in DeployInput) (*DeployResult, error) {
	e, p, u, err := s.authorizeEnvironment(ctx, in.EnvironmentID, fluxgate.ActionSync)
	if err != nil {
		return nil, err
	}
	req := gitrepo.DeployRequest{
		Deployment: in.Deployment, Container: in.Container, Image: in.Image, Replicas: in.Replicas,
		Env: in.Env, RemoveEnv: in.RemoveEnv, User: userLabel(u),
	}
	if err := req.Validate(); err != nil {
		return nil, gitError("validate deploy", err)
	}
	if in.Image == nil && in.Replicas == nil && len(in.Env) == 0 && len(in.RemoveEnv) == 0 {
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "nothing to change: give an image, replicas or environment variables")
	}
	change, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	d := &fluxgate.Deployment{
		ProjectID: p.ID, EnvironmentID: e.ID, Strategy: "rolling", Message: strings.SplitN(gitrepo.DeployMessage(req), "\n", 2)[0],
		DeployedBy: u.ID, Change: change, StartedAt: now, Version: versionOf(in),
	}
	switch {
	case e.Approval.Required:
		// Nothing is committed until approvers agree; ApproveDeployment
		// moves it on (SPEC §11).
		if !p.GitOpsEnabled && in.Deployment == "" {
			return nil, fluxgate.InvalidField("deployment", "name the Deployment: without GitOps there are no manifests to find it in")
		}
		d.Method, d.Status = fluxgate.MethodGitOpsUI, fluxgate.DeploymentAwaitingApproval
		d.Steps = pendingSteps()
		if err := s.recordDeployment(ctx, d, "deploy.requested"); err != nil {
			return nil, err
		}
		s.publishDeployment(ctx, d)
		return &DeployResult{Deployment: d, Message: fmt.Sprintf("%s requires approval: the deploy waits for %d approval(s) before it is committed", e.Name, max(e.Approval.MinApprovals, 1))}, nil
	case !p.GitOpsEnabled:
		return s.deployDirect(ctx, p, d, in)
	}

	t, err := s.gitTarget(ctx, e)
	if err != nil {
		return nil, err
	}
	res, err := s.git.Commit(ctx, gitrepo.CommitRequest{
		Remote: t.remote, Branch: t.branch, Dir: t.path,
		Author: gitrepo.Signature{Name: userLabel(u), Email: userEmail(u)},
		Edit:   gitrepo.DeployEdit(req),
	})
	if err != nil {
		return nil, gitError("deploy commit", err)
	}
	d.Method = fluxgate.MethodGitOpsUI
	markCommitted(d, res, now)
	if err := s.recordDeployment(ctx, d, "deploy.created"); err != nil {
		return nil, err
	}
	s.handToFlux(ctx, e, d)
	return &DeployResult{Deployment: d, Message: fmt.Sprintf("committed %s to %s; Flux was asked to apply it now", shortSHA(res.SHA), res.Branch)}, nil
}

// deployDirect applies the change to the Deployment in the cluster (no
// Git) and records a manual deployment.
func (s *Service) deployDirect(ctx context.Context, p *fluxgate.Project, d *fluxgate.Deployment, in DeployInput) (*DeployResult, error) {
	if in.Deployment == "" {
		return nil, fluxgate.InvalidField("deployment", "name the Deployment: without GitOps there are no manifests to find it in")
	}
	if err := s.applyDirect(ctx, p, d, in); err != nil {
		return nil, err
	}
	if err := s.recordDeployment(ctx, d, "deploy.created"); err != nil {
		return nil, err
	}
	s.publishDeployment(ctx, d)
	return &DeployResult{Deployment: d, Message: fmt.Sprintf("applied directly to Deployment %s (the project does not use GitOps)", in.Deployment)}, nil
}

// applyDirect applies a deploy to the Deployment in the cluster and marks
// d as a succeeded manual deployment.
func (s *Service) applyDirect(ctx context.Context, p *fluxgate.Project, d *fluxgate.Deployment, in DeployInput) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	ch := k8s.WorkloadChange{Namespace: p.Namespace, Name: in.Deployment, Container: in.Container, Image: in.Image, Replicas: in.Replicas, RemoveEnv: in.RemoveEnv}
	for _, e := range in.Env {
		ch.Env = append(ch.Env, k8s.WorkloadEnvVar{Name: e.Name, Value: e.Value})
	}
	applied, err := c.ApplyWorkloadChange(ctx, ch)
	if err != nil {
		return clusterError("direct deploy", err)
	}
	now := s.now().UTC()
	d.Method, d.Status, d.FinishedAt = fluxgate.MethodManual, fluxgate.DeploymentSucceeded, &now
	d.Steps = []fluxgate.DeploymentStep{{
		Name: fluxgate.StepApplied, Status: "done", At: &now,
		Message:   fmt.Sprintf("applied to Deployment %s/%s (generation %d)", p.Namespace, in.Deployment, applied.Generation),
		ReadyPods: int(applied.ReadyReplicas), TotalPods: int(applied.Replicas),
	}}
	return nil
}

// markCommitted records that res pushed d's change: pending, with the
// commit, its branch and author, and the committed step done.
func markCommitted(d *fluxgate.Deployment, res *gitrepo.CommitResult, now time.Time) {
	d.Status, d.CommitSHA, d.Branch = fluxgate.DeploymentPending, res.SHA, res.Branch
	d.CommitAuthor = fluxgate.CommitAuthor{Name: res.Author.Name, Email: res.Author.Email}
	d.Steps = pendingSteps()
	d.Steps[0] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: "done", At: &now, Message: "commit " + shortSHA(res.SHA) + " pushed to " + res.Branch}
}

// handToFlux follows a stored, committed deployment: an environment whose
// autoSync is off is let to apply it once (a deploy through fluxgate is
// the explicit act autoSync off waits for; pushes are not), Flux is asked
// to reconcile now, the deployment is published and the tracker takes it.
func (s *Service) handToFlux(ctx context.Context, e *fluxgate.Environment, d *fluxgate.Deployment) {
	s.syncOnce(ctx, e, d.CommitSHA)
	s.requestReconcile(ctx, e)
	s.publishDeployment(ctx, d)
	s.trackDeployment(ctx, d)
}

// recordDeployment stores d and its audit entry in one transaction.
func (s *Service) recordDeployment(ctx context.Context, d *fluxgate.Deployment, action string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateDeployment(ctx, d); err != nil {
			return err
		}
		return s.audit(ctx, d.ProjectID, action, "deployment", d.ID, map[string]any{
			"environmentId": d.EnvironmentID, "method": d.Method, "status": d.Status,
			"commitSha": d.CommitSHA, "branch": d.Branch, "change": json.RawMessage(d.Change),
		})
	})
}

func (s *Service) publishDeployment(ctx context.Context, d *fluxgate.Deployment) {
	s.publish(ctx, fluxgate.DeploymentTopic(d.ID), fluxgate.EventDeploymentProgress, d.ProjectID, 0, d)
	s.publish(ctx, fluxgate.ProjectTopic(d.ProjectID), fluxgate.EventDeploymentProgress, d.ProjectID, 0, d)
}

// requestReconcile asks Flux to reconcile the environment's GitRepository
// and Kustomization now (and the GitRepository its Kustomizations read,
// when that one is not the environment's). The commit is what matters: a
// missing cluster or a refused request is logged, not returned.
func (s *Service) requestReconcile(ctx context.Context, e *fluxgate.Environment) {
	c, err := s.cluster()
	if err != nil {
		s.logger.WarnContext(ctx, "no cluster to ask for a reconcile; Flux applies the commit at its next interval", "environment", e.ID, "err", fluxgate.ErrorMessage(err))
		return
	}
	rows, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: e.ProjectID, EnvironmentID: e.ID, Page: fluxgate.Page{First: 200}})
	if err != nil {
		s.logger.ErrorContext(ctx, "list resources to reconcile", "environment", e.ID, "err", err)
		return
	}
	seen := map[string]bool{}
	var targets []*fluxgate.GitOpsResource
	add := func(r *fluxgate.GitOpsResource) {
		if k := k8s.KeyOf(r).String(); !seen[k] {
			seen[k] = true
			targets = append(targets, r)
		}
	}
	var sources []string
	for _, r := range rows {
		switch r.Kind {
		case fluxgate.KindGitRepository:
			add(r)
		case fluxgate.KindKustomization:
			var spec fluxgate.KustomizationSpec
			if json.Unmarshal(r.Spec, &spec) == nil && spec.SourceRef.Kind == string(fluxgate.KindGitRepository) {
				sources = append(sources, spec.SourceRef.Name)
			}
		}
	}
	if len(sources) > 0 {
		all, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: e.ProjectID, Kind: fluxgate.KindGitRepository, Page: fluxgate.Page{First: 200}})
		if err == nil {
			for _, r := range all {
				for _, n := range sources {
					if r.Name == n {
						add(r)
					}
				}
			}
		}
	}
	// Sources first: the Kustomization then reads the new artifact.
	for _, r := range rows {
		if r.Kind == fluxgate.KindKustomization {
			add(r)
		}
	}
	for _, r := range targets {
		if _, err := c.Reconcile(ctx, k8s.KeyOf(r), 0); err != nil {
			s.logger.WarnContext(ctx, "request reconcile", "object", k8s.KeyOf(r).String(), "err", err)
		}
	}
}

func pendingSteps() []fluxgate.DeploymentStep {
	return []fluxgate.DeploymentStep{
		{Name: fluxgate.StepCommitted, Status: "pending"},
		{Name: fluxgate.StepFetched, Status: "pending"},
		{Name: fluxgate.StepApplied, Status: "pending"},
		{Name: fluxgate.StepHealthy, Status: "pending"},
	}
}

// versionOf names a deployment: the image tag when the image changes.
func versionOf(in DeployInput) string {
	if in.Image == nil {
		return ""
	}
	img := *in.Image
	if i := strings.LastIndex(img, "@"); i >= 0 {
		return img[i+1:]
	}
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		return img[i+1:]
	}
	return "latest"
}

func userLabel(u *fluxgate.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Subject
}

func userEmail(u *fluxgate.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.Subject + "@users.fluxgate"
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Deployment returns a deployment the caller can read.
func (s *Service) Deployment(ctx context.Context, id string) (*fluxgate.Deployment, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	d, err := s.store.GetDeployment(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := s.authorizeEnvironment(ctx, d.EnvironmentID, fluxgate.ActionRead); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment %s not found", id)
		}
		return nil, err
	}
	return d, nil
}

// SetRepositoryCredentialsInput is one of token, basic or SSH credentials
// for pushing to a repository.
type SetRepositoryCredentialsInput struct {
	RepositoryID string
	Auth         gitrepo.Auth
}

// SetRepositoryCredentials seals and stores a repository's push
// credentials (needs update). It returns the credential type only
// ("token", "basic" or "ssh"), never the secret.
func (s *Service) SetRepositoryCredentials(ctx context.Context, in SetRepositoryCredentialsInput) (string, error) {
	r, p, err := s.authorizeRepository(ctx, in.RepositoryID, fluxgate.ActionUpdate)
	if err != nil {
		return "", err
	}
	a := in.Auth
	typ := ""
	switch {
	case len(a.SSHPrivateKey) > 0:
		if len(a.KnownHosts) == 0 {
			return "", fluxgate.InvalidField("ssh.knownHosts", "known_hosts is required: host keys are always verified")
		}
		typ = "ssh"
	case a.Token != "":
		typ = "token"
	case a.Username != "" && a.Password != "":
		typ = "basic"
	default:
		return "", fluxgate.InvalidField("token", "give exactly one of token, basic (username and password) and ssh")
	}
	if s.sealer == nil {
		return "", fluxgate.Errorf(fluxgate.EUNAVAILABLE, "no credential key is configured (FLUXGATE_CREDENTIAL_KEY)")
	}
	sealed, err := s.sealer.SealAuth(a)
	if err != nil {
		return "", fmt.Errorf("seal credentials: %w", err)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.SetRepositoryCredentials(ctx, r.ID, sealed); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "repository.credentials.set", "repository", r.ID, map[string]any{"type": typ})
	})
	if err != nil {
		return "", err
	}
	return typ, nil
}
