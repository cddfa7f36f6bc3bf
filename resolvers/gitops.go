package resolvers

import (
	"context"
	"strconv"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/service"
)

func (r *queryResolver) GitopsResources(ctx context.Context, projectID string, environmentID *string, kind *fluxgate.ResourceKind, status *fluxgate.ResourceStatus, first *int, after *string) (*model.GitOpsResourceConnection, error) {
	items, pi, err := r.Service.Resources(ctx, fluxgate.ResourceFilter{
		ProjectID: projectID, EnvironmentID: deref(environmentID), Kind: deref(kind), Status: deref(status), Page: page(first, after),
	})
	if err != nil {
		return nil, err
	}
	conn := &model.GitOpsResourceConnection{PageInfo: pageInfo(pi), Edges: make([]*model.GitOpsResourceEdge, len(items))}
	for i, it := range items {
		conn.Edges[i] = &model.GitOpsResourceEdge{Cursor: fluxgate.EncodeCursor(it.ID), Node: it}
	}
	return conn, nil
}

func (r *queryResolver) GitopsResource(ctx context.Context, id string) (*fluxgate.GitOpsResource, error) {
	return r.Service.Resource(ctx, id)
}

func (r *queryResolver) FluxHealth(ctx context.Context) (*service.FluxHealth, error) {
	return r.Service.FluxHealth(ctx)
}

func (r *queryResolver) DiagnoseGitRepository(ctx context.Context, id string) (*k8s.Diagnosis, error) {
	return r.Service.DiagnoseGitRepository(ctx, id)
}

func (r *mutationResolver) create(ctx context.Context, projectID string, env, repo *string, kind fluxgate.ResourceKind, name string, spec fluxgate.ResourceSpec) (*model.GitOpsResourcePayload, error) {
	res, err := r.Service.CreateResource(ctx, service.ResourceInput{
		ProjectID: projectID, EnvironmentID: deref(env), RepositoryID: deref(repo), Kind: kind, Name: name, Spec: spec,
	})
	if err != nil {
		return nil, err
	}
	return &model.GitOpsResourcePayload{Resource: res}, nil
}

func (r *mutationResolver) CreateGitRepository(ctx context.Context, in model.CreateGitRepositoryInput) (*model.GitOpsResourcePayload, error) {
	return r.create(ctx, in.ProjectID, in.EnvironmentID, in.RepositoryID, fluxgate.KindGitRepository, in.Name, in.Spec)
}

func (r *mutationResolver) CreateKustomization(ctx context.Context, in model.CreateKustomizationInput) (*model.GitOpsResourcePayload, error) {
	return r.create(ctx, in.ProjectID, in.EnvironmentID, in.RepositoryID, fluxgate.KindKustomization, in.Name, in.Spec)
}

func (r *mutationResolver) CreateHelmRelease(ctx context.Context, in model.CreateHelmReleaseInput) (*model.GitOpsResourcePayload, error) {
	return r.create(ctx, in.ProjectID, in.EnvironmentID, in.RepositoryID, fluxgate.KindHelmRelease, in.Name, in.Spec)
}

func (r *mutationResolver) CreateHelmRepository(ctx context.Context, in model.CreateHelmRepositoryInput) (*model.GitOpsResourcePayload, error) {
	return r.create(ctx, in.ProjectID, in.EnvironmentID, nil, fluxgate.KindHelmRepository, in.Name, in.Spec)
}

func (r *mutationResolver) CreateImagePolicy(ctx context.Context, in model.CreateImagePolicyInput) (*model.CreateImagePolicyPayload, error) {
	if in.Policy.ImageRepository == "" {
		in.Policy.ImageRepository = in.Name
	}
	env := deref(in.EnvironmentID)
	out, err := r.Service.BatchCreateResources(ctx, in.ProjectID, []service.ResourceInput{
		{ProjectID: in.ProjectID, EnvironmentID: env, Kind: fluxgate.KindImageRepository, Name: in.Name, Spec: in.ImageRepository},
		{ProjectID: in.ProjectID, EnvironmentID: env, Kind: fluxgate.KindImagePolicy, Name: in.Name, Spec: in.Policy},
	})
	if err != nil {
		return nil, err
	}
	return &model.CreateImagePolicyPayload{ImageRepository: out[0], ImagePolicy: out[1]}, nil
}

func (r *mutationResolver) update(ctx context.Context, id string, kind fluxgate.ResourceKind, spec fluxgate.ResourceSpec) (*model.GitOpsResourcePayload, error) {
	res, err := r.Service.UpdateResource(ctx, id, kind, spec)
	if err != nil {
		return nil, err
	}
	return &model.GitOpsResourcePayload{Resource: res}, nil
}

func (r *mutationResolver) UpdateGitRepository(ctx context.Context, in model.UpdateGitRepositoryInput) (*model.GitOpsResourcePayload, error) {
	return r.update(ctx, in.ID, fluxgate.KindGitRepository, in.Spec)
}

func (r *mutationResolver) UpdateKustomization(ctx context.Context, in model.UpdateKustomizationInput) (*model.GitOpsResourcePayload, error) {
	return r.update(ctx, in.ID, fluxgate.KindKustomization, in.Spec)
}

func (r *mutationResolver) UpdateHelmRelease(ctx context.Context, in model.UpdateHelmReleaseInput) (*model.GitOpsResourcePayload, error) {
	return r.update(ctx, in.ID, fluxgate.KindHelmRelease, in.Spec)
}

func (r *mutationResolver) UpdateHelmRepository(ctx context.Context, in model.UpdateHelmRepositoryInput) (*model.GitOpsResourcePayload, error) {
	return r.update(ctx, in.ID, fluxgate.KindHelmRepository, in.Spec)
}

func (r *mutationResolver) UpdateImagePolicy(ctx context.Context, in model.UpdateImagePolicyInput) (*model.GitOpsResourcePayload, error) {
	return r.update(ctx, in.ID, fluxgate.KindImagePolicy, in.Spec)
}

func (r *mutationResolver) DeleteGitOpsResource(ctx context.Context, in model.DeleteGitOpsResourceInput) (*model.DeleteGitOpsResourcePayload, error) {
	if err := r.Service.DeleteResource(ctx, in.ID, in.Prune); err != nil {
		return nil, err
	}
	return &model.DeleteGitOpsResourcePayload{DeletedID: in.ID}, nil
}

func (r *mutationResolver) BatchCreateResources(ctx context.Context, in model.BatchCreateResourcesInput) (*model.BatchCreateResourcesPayload, error) {
	ins := make([]service.ResourceInput, len(in.Resources))
	for i, it := range in.Resources {
		spec, err := fluxgate.DecodeResourceSpec(it.Kind, it.Spec)
		if err != nil {
			return nil, prefixField(err, i)
		}
		ins[i] = service.ResourceInput{ProjectID: in.ProjectID, EnvironmentID: deref(it.EnvironmentID), RepositoryID: deref(it.RepositoryID), Kind: it.Kind, Name: it.Name, Spec: spec}
	}
	out, err := r.Service.BatchCreateResources(ctx, in.ProjectID, ins)
	if err != nil {
		return nil, err
	}
	return &model.BatchCreateResourcesPayload{Resources: out}, nil
}

// prefixField points a spec decoding error at its batch item.
func prefixField(err error, i int) error {
	if f := fluxgate.ErrorField(err); f != "" {
		return fluxgate.InvalidField("resources["+strconv.Itoa(i)+"].spec."+f, "%s", fluxgate.ErrorMessage(err))
	}
	return fluxgate.InvalidField("resources["+strconv.Itoa(i)+"].spec", "%s", fluxgate.ErrorMessage(err))
}

func (r *mutationResolver) TriggerSync(ctx context.Context, in model.TriggerSyncInput) (*model.TriggerSyncPayload, error) {
	wait := 10 * time.Second
	if in.WaitSeconds != nil {
		wait = time.Duration(*in.WaitSeconds) * time.Second
	}
	res, err := r.Service.TriggerSync(ctx, in.ID, wait)
	if err != nil {
		return nil, err
	}
	return &model.TriggerSyncPayload{Handled: res.Handled, Token: res.Token, Resource: res.Resource}, nil
}

func (r *mutationResolver) SuspendResource(ctx context.Context, in model.ResourceIDInput) (*model.GitOpsResourcePayload, error) {
	res, err := r.Service.SetSuspended(ctx, in.ID, true)
	if err != nil {
		return nil, err
	}
	return &model.GitOpsResourcePayload{Resource: res}, nil
}

func (r *mutationResolver) ResumeResource(ctx context.Context, in model.ResourceIDInput) (*model.GitOpsResourcePayload, error) {
	res, err := r.Service.SetSuspended(ctx, in.ID, false)
	if err != nil {
		return nil, err
	}
	return &model.GitOpsResourcePayload{Resource: res}, nil
}

func (r *mutationResolver) CreateGitCredentials(ctx context.Context, in model.CreateGitCredentialsInput) (*model.CreateGitCredentialsPayload, error) {
	var creds k8s.GitCredentials
	if in.Basic != nil {
		creds.Basic = &k8s.BasicAuth{Username: in.Basic.Username, Password: in.Basic.Password}
	}
	if in.Token != nil {
		creds.Token = &k8s.TokenAuth{Token: *in.Token}
	}
	if in.SSH != nil {
		creds.SSH = &k8s.SSHAuth{PrivateKey: []byte(in.SSH.PrivateKey), KnownHosts: []byte(in.SSH.KnownHosts)}
	}
	info, err := r.Service.CreateGitCredentials(ctx, service.GitCredentialsInput{ProjectID: in.ProjectID, Name: in.Name, Creds: creds})
	if err != nil {
		return nil, err
	}
	return &model.CreateGitCredentialsPayload{Name: info.Name, Namespace: info.Namespace, Type: info.Type}, nil
}

func (r *mutationResolver) InstallFlux(ctx context.Context, in model.InstallFluxInput) (*model.InstallFluxPayload, error) {
	wait := time.Minute
	if in.WaitSeconds != nil {
		wait = time.Duration(*in.WaitSeconds) * time.Second
	}
	res, err := r.Service.InstallFlux(ctx, []byte(deref(in.Manifests)), wait)
	if err != nil {
		return nil, err
	}
	h := &service.FluxHealth{}
	if res.Health != nil {
		h = &service.FluxHealth{Installed: res.Health.Installed, Ready: res.Health.Ready, CRDs: res.Health.CRDs, Components: res.Health.Components}
	}
	return &model.InstallFluxPayload{AppliedCount: len(res.Applied), Health: h}, nil
}
