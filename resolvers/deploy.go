package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
	"github.com/fluxgate/fluxgate/graph"
	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/service"
)

// Deployment returns the Deployment field resolver.
func (r *Resolver) Deployment() graph.DeploymentResolver { return &deploymentResolver{r} }

// DeploymentStep returns the DeploymentStep field resolver.
func (r *Resolver) DeploymentStep() graph.DeploymentStepResolver { return &deploymentStepResolver{r} }

type deploymentResolver struct{ *Resolver }
type deploymentStepResolver struct{ *Resolver }

func (r *deploymentResolver) DeployedBy(ctx context.Context, obj *fluxgate.Deployment) (*fluxgate.User, error) {
	if obj.DeployedBy == "" {
		return nil, nil
	}
	return loadUser(ctx, obj.DeployedBy)
}

func (r *deploymentResolver) CommitAuthor(_ context.Context, obj *fluxgate.Deployment) (*fluxgate.CommitAuthor, error) {
	if obj.CommitAuthor.Name == "" && obj.CommitAuthor.Email == "" {
		return nil, nil
	}
	return &obj.CommitAuthor, nil
}

func (r *deploymentResolver) Environment(ctx context.Context, obj *fluxgate.Deployment) (*fluxgate.Environment, error) {
	return r.Service.Environment(ctx, obj.EnvironmentID)
}

func (r *deploymentStepResolver) Name(_ context.Context, obj *fluxgate.DeploymentStep) (string, error) {
	return string(obj.Name), nil
}

func (r *queryResolver) Deployment(ctx context.Context, id string) (*fluxgate.Deployment, error) {
	return r.Service.Deployment(ctx, id)
}

func envVars(in []*model.EnvVarInput) []yamledit.EnvVar {
	var out []yamledit.EnvVar
	for _, e := range in {
		out = append(out, yamledit.EnvVar{Name: e.Name, Value: e.Value})
	}
	return out
}

func int32Ptr(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

func (r *mutationResolver) DeployWithGitOps(ctx context.Context, in model.DeployWithGitOpsInput) (*model.DeployPayload, error) {
	res, err := r.Service.DeployWithGitOps(ctx, service.DeployInput{
		EnvironmentID: in.EnvironmentID, Deployment: deref(in.Deployment), Container: deref(in.Container),
		Image: in.Image, Replicas: int32Ptr(in.Replicas), Env: envVars(in.Env), RemoveEnv: in.RemoveEnv,
	})
	if err != nil {
		return nil, err
	}
	return &model.DeployPayload{Deployment: res.Deployment, Message: res.Message}, nil
}

func (r *queryResolver) EnvironmentConfig(ctx context.Context, environmentID string) (*model.EnvironmentConfig, error) {
	c, err := r.Service.EnvironmentConfig(ctx, environmentID)
	if err != nil {
		return nil, err
	}
	out := &model.EnvironmentConfig{Revision: c.Revision, Branch: c.Branch, Path: c.Path, Files: []*model.ConfigFile{}, Deployments: []*model.DeploymentConfig{}}
	for _, f := range c.Files {
		out.Files = append(out.Files, &model.ConfigFile{Path: f.Path, Content: string(f.Content), BlobID: f.BlobID})
	}
	for _, d := range c.Deployments {
		out.Deployments = append(out.Deployments, &model.DeploymentConfig{Path: d.Path, View: deploymentView(d.View, c.LatestImages)})
	}
	return out, nil
}

func deploymentView(v *yamledit.DeploymentView, latest map[string]string) *model.DeploymentView {
	out := &model.DeploymentView{Name: v.Name, Containers: []*model.ContainerView{}}
	if v.Replicas != nil {
		n := int(*v.Replicas)
		out.Replicas = &n
	}
	for _, c := range v.Containers {
		cv := &model.ContainerView{
			Name: c.Name, Image: c.Image, ImagePullPolicy: c.ImagePullPolicy, Env: []*model.EnvVarView{},
			Resources: &model.ResourcesView{
				Requests: &model.ResourceQuantities{CPU: c.Resources.Requests["cpu"], Memory: c.Resources.Requests["memory"]},
				Limits:   &model.ResourceQuantities{CPU: c.Resources.Limits["cpu"], Memory: c.Resources.Limits["memory"]},
			},
		}
		if img, ok := latest[service.ImageName(c.Image)]; ok {
			cv.LatestImage = &img
		}
		if p := c.LivenessProbe; p != nil {
			cv.LivenessProbe = &model.ProbeView{Path: p.Path, Port: p.Port, InitialDelaySeconds: int(p.InitialDelaySeconds)}
		}
		for _, e := range c.Env {
			cv.Env = append(cv.Env, &model.EnvVarView{Name: e.Name, Value: e.Value})
		}
		out.Containers = append(out.Containers, cv)
	}
	return out
}

func (r *queryResolver) ValidateConfig(ctx context.Context, yaml string) (*model.ConfigValidation, error) {
	issues, err := r.Service.ValidateConfig(ctx, yaml)
	if err != nil {
		return nil, err
	}
	out := &model.ConfigValidation{Valid: len(issues) == 0, Issues: []*yamledit.Issue{}}
	for i := range issues {
		out.Issues = append(out.Issues, &issues[i])
	}
	return out, nil
}

// configChange turns the GraphQL change input into the service's.
func configChange(envID string, base *string, files []*model.ConfigFileInput, ch *model.StructuredChangeInput) service.ConfigChangeInput {
	in := service.ConfigChangeInput{EnvironmentID: envID, BaseRevision: deref(base)}
	if len(files) > 0 {
		in.Files = make(map[string][]byte, len(files))
		for _, f := range files {
			in.Files[f.Path] = []byte(f.Content)
		}
	}
	if ch != nil {
		e := yamledit.DeploymentEdit{Name: deref(ch.Deployment), Replicas: int32Ptr(ch.Replicas)}
		ce := yamledit.ContainerEdit{Name: deref(ch.Container), Image: ch.Image, ImagePullPolicy: ch.ImagePullPolicy, Env: envVars(ch.Env), RemoveEnv: ch.RemoveEnv}
		if rs := ch.Resources; rs != nil {
			ce.Resources = &yamledit.ResourcesEdit{Requests: quantities(rs.Requests), Limits: quantities(rs.Limits)}
		}
		if p := ch.LivenessProbe; p != nil {
			ce.LivenessProbe = &yamledit.ProbeEdit{Remove: deref(p.Remove), Path: p.Path, Port: p.Port, InitialDelaySeconds: int32Ptr(p.InitialDelaySeconds)}
		}
		if ce.Image != nil || ce.ImagePullPolicy != nil || len(ce.Env) > 0 || len(ce.RemoveEnv) > 0 || ce.Resources != nil || ce.LivenessProbe != nil {
			e.Containers = []yamledit.ContainerEdit{ce}
		}
		in.Change = &e
	}
	return in
}

func quantities(q *model.ResourceQuantitiesInput) map[string]string {
	if q == nil {
		return nil
	}
	m := map[string]string{}
	if q.CPU != nil {
		m["cpu"] = *q.CPU
	}
	if q.Memory != nil {
		m["memory"] = *q.Memory
	}
	return m
}

func conflicts(cs []gitrepo.Conflict) []*yamledit.Conflict {
	out := make([]*yamledit.Conflict, len(cs))
	for i := range cs {
		out[i] = &cs[i]
	}
	return out
}

func (r *queryResolver) PreviewConfigChange(ctx context.Context, in model.ConfigChangeInput) (*model.ConfigPreview, error) {
	p, err := r.Service.PreviewConfigChange(ctx, configChange(in.EnvironmentID, in.BaseRevision, in.Files, in.Change))
	if err != nil {
		return nil, err
	}
	out := &model.ConfigPreview{HeadRevision: p.HeadRevision, Files: []*gitrepo.FileDiff{}, Changes: []*yamledit.Change{}, Impact: &p.Impact, Conflicts: conflicts(p.Conflicts)}
	for i := range p.Files {
		out.Files = append(out.Files, &p.Files[i])
	}
	for i := range p.Changes {
		out.Changes = append(out.Changes, &p.Changes[i])
	}
	return out, nil
}

func (r *mutationResolver) CommitConfigChanges(ctx context.Context, in model.CommitConfigChangesInput) (model.CommitConfigResult, error) {
	ci := configChange(in.EnvironmentID, in.BaseRevision, in.Files, in.Change)
	ci.Message, ci.Description = in.Message, deref(in.Description)
	res, err := r.Service.CommitConfigChanges(ctx, ci)
	if err != nil {
		return nil, err
	}
	if len(res.Conflicts) > 0 {
		return &model.ConfigConflict{Conflicts: conflicts(res.Conflicts)}, nil
	}
	if res.Deployment.Status == fluxgate.DeploymentAwaitingApproval {
		return &model.ConfigAwaitingApproval{Deployment: res.Deployment}, nil
	}
	return &model.ConfigCommitted{CommitSha: res.CommitSHA, Deployment: res.Deployment}, nil
}

func (r *mutationResolver) SetRepositoryCredentials(ctx context.Context, in model.SetRepositoryCredentialsInput) (*model.SetRepositoryCredentialsPayload, error) {
	var a gitrepo.Auth
	n := 0
	if in.Token != nil {
		a.Token = *in.Token
		n++
	}
	if in.Basic != nil {
		a.Username, a.Password = in.Basic.Username, in.Basic.Password
		n++
	}
	if in.SSH != nil {
		a.SSHPrivateKey, a.KnownHosts = []byte(in.SSH.PrivateKey), []byte(in.SSH.KnownHosts)
		n++
	}
	if n != 1 {
		return nil, fluxgate.InvalidField("token", "give exactly one of token, basic and ssh")
	}
	typ, err := r.Service.SetRepositoryCredentials(ctx, service.SetRepositoryCredentialsInput{RepositoryID: in.RepositoryID, Auth: a})
	if err != nil {
		return nil, err
	}
	return &model.SetRepositoryCredentialsPayload{RepositoryID: in.RepositoryID, Type: typ}, nil
}
