package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
)

// Cluster is what the GitOps service needs from Kubernetes (k8s.Client).
type Cluster interface {
	EnsureNamespace(ctx context.Context, name, projectID string) error
	Apply(ctx context.Context, r *fluxgate.GitOpsResource) (*k8s.Applied, error)
	Delete(ctx context.Context, key k8s.ObjectKey, opts k8s.DeleteOptions) (*k8s.DeleteResult, error)
	Suspend(ctx context.Context, key k8s.ObjectKey) error
	Resume(ctx context.Context, key k8s.ObjectKey) error
	// SetAnnotations merges annotations into an object ("" removes one).
	SetAnnotations(ctx context.Context, key k8s.ObjectKey, annotations map[string]string) error
	Reconcile(ctx context.Context, key k8s.ObjectKey, timeout time.Duration) (*k8s.ReconcileResult, error)
	ApplyGitCredentials(ctx context.Context, namespace, name string, creds k8s.GitCredentials, labels map[string]string) (*k8s.GitCredentialsInfo, error)
	FluxHealth(ctx context.Context) (*k8s.FluxHealth, error)
	DiagnoseGitRepository(ctx context.Context, namespace, name string) (*k8s.Diagnosis, error)
	InstallFlux(ctx context.Context, manifests []byte, opts k8s.InstallOptions) (*k8s.InstallResult, error)
	// ApplyWorkloadChange is a direct deploy (projects without GitOps).
	ApplyWorkloadChange(ctx context.Context, ch k8s.WorkloadChange) (*k8s.WorkloadApplied, error)
}

// ClusterSource hands out the cluster once it is ready. The local cluster
// takes a while to build and start; until then operations that need it
// answer UNAVAILABLE with the reason.
type ClusterSource interface {
	Cluster() (Cluster, error)
}

// StaticCluster is a ClusterSource for a cluster that is ready at once.
type StaticCluster struct{ C Cluster }

// Cluster returns the cluster.
func (s StaticCluster) Cluster() (Cluster, error) { return s.C, nil }

// WithCluster sets where Flux objects are applied.
func WithCluster(c ClusterSource) Option { return func(s *Service) { s.clusters = c } }

// WithAdmins names the token subjects allowed cluster-wide operations
// (installFlux).
func WithAdmins(subjects ...string) Option {
	return func(s *Service) {
		for _, sub := range subjects {
			s.admins[sub] = true
		}
	}
}

// WithFluxBundle sets the install bundle installFlux applies by default.
func WithFluxBundle(manifests []byte) Option { return func(s *Service) { s.fluxBundle = manifests } }

func (s *Service) cluster() (Cluster, error) {
	if s.clusters == nil {
		return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "no Kubernetes cluster is configured")
	}
	c, err := s.clusters.Cluster()
	if err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.EINTERNAL {
			return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "cluster not ready: %v", err)
		}
		return nil, err
	}
	return c, nil
}

// ResourceInput creates one GitOps resource. Spec is one of the *Spec
// types of its kind.
type ResourceInput struct {
	ProjectID     string
	EnvironmentID string
	RepositoryID  string
	Kind          fluxgate.ResourceKind
	Name          string
	Spec          fluxgate.ResourceSpec
}

// FluxHealth is Flux's state in the cluster, or why it cannot be known.
type FluxHealth struct {
	Installed  bool
	Ready      bool
	CRDs       []k8s.CRDHealth
	Components []k8s.ComponentHealth
	Message    string
}

// authorizeScope checks act on an environment when envID is set, on the
// project otherwise.
func (s *Service) authorizeScope(ctx context.Context, projectID, envID string, act fluxgate.Action) (*fluxgate.Project, error) {
	if envID == "" {
		p, _, err := s.authorizeProject(ctx, projectID, act)
		return p, err
	}
	e, p, _, err := s.authorizeEnvironment(ctx, envID, act)
	if err != nil {
		return nil, err
	}
	if e.ProjectID != projectID {
		return nil, fluxgate.InvalidField("environmentId", "environment %s is not in project %s", envID, projectID)
	}
	return p, nil
}

func (s *Service) newResource(ctx context.Context, p *fluxgate.Project, in ResourceInput) (*fluxgate.GitOpsResource, error) {
	if !in.Kind.Valid() {
		return nil, fluxgate.InvalidField("kind", "kind %q is not a Flux kind fluxgate manages", in.Kind)
	}
	if err := validateDNSLabel("name", in.Name); err != nil {
		return nil, err
	}
	if in.Spec == nil {
		return nil, fluxgate.InvalidField("spec", "spec is required")
	}
	if err := in.Spec.Validate(); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(in.Spec)
	if err != nil {
		return nil, err
	}
	r := &fluxgate.GitOpsResource{
		ProjectID: p.ID, Kind: in.Kind, Name: in.Name, Namespace: p.Namespace,
		Spec: spec, Status: fluxgate.ResourcePending, CreatedBy: fluxgate.UserIDFromContext(ctx),
	}
	if in.EnvironmentID != "" {
		r.EnvironmentID = &in.EnvironmentID
	}
	// autoSync off: the environment's Kustomizations start suspended.
	if r.Suspended, err = s.suspendedAtCreation(ctx, in); err != nil {
		return nil, err
	}
	if in.RepositoryID != "" {
		repo, err := s.store.GetRepository(ctx, in.RepositoryID)
		if err != nil || repo.ProjectID != p.ID {
			return nil, fluxgate.InvalidField("repositoryId", "repository %s is not in the project", in.RepositoryID)
		}
		r.RepositoryID = &in.RepositoryID
	}
	return r, nil
}

// CreateResource stores a GitOps resource and applies it to the cluster,
// together: when the apply fails the row is not kept, and when the row
// cannot be committed the object is removed again.
func (s *Service) CreateResource(ctx context.Context, in ResourceInput) (*fluxgate.GitOpsResource, error) {
	out, err := s.BatchCreateResources(ctx, in.ProjectID, []ResourceInput{in})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// maxBatch bounds batchCreateResources.
const maxBatch = 100

// BatchCreateResources creates many resources in one transaction: all rows
// are written and all objects applied, or nothing is left behind.
func (s *Service) BatchCreateResources(ctx context.Context, projectID string, ins []ResourceInput) ([]*fluxgate.GitOpsResource, error) {
	if len(ins) == 0 || len(ins) > maxBatch {
		return nil, fluxgate.InvalidField("resources", "give 1 to %d resources", maxBatch)
	}
	var p *fluxgate.Project
	rows := make([]*fluxgate.GitOpsResource, len(ins))
	seen := map[string]bool{}
	for i, in := range ins {
		var err error
		if p, err = s.authorizeScope(ctx, projectID, in.EnvironmentID, fluxgate.ActionCreate); err != nil {
			return nil, err
		}
		if rows[i], err = s.newResource(ctx, p, in); err != nil {
			if len(ins) > 1 {
				return nil, prefixField(err, fmt.Sprintf("resources[%d].", i))
			}
			return nil, err
		}
		key := string(in.Kind) + "/" + in.EnvironmentID + "/" + in.Name
		if seen[key] {
			return nil, fluxgate.InvalidField(fmt.Sprintf("resources[%d].name", i), "%s %s appears twice", in.Kind, in.Name)
		}
		seen[key] = true
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	var applied []*fluxgate.GitOpsResource
	undo := func() {
		for _, r := range applied {
			if _, err := c.Delete(context.WithoutCancel(ctx), k8s.KeyOf(r), k8s.DeleteOptions{}); err != nil {
				s.logger.ErrorContext(ctx, "remove object after failed create", "object", k8s.KeyOf(r).String(), "err", err)
			}
		}
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		for _, r := range rows {
			if err := s.store.CreateResource(ctx, r); err != nil {
				if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
					return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "name", Message: fmt.Sprintf("%s %s already exists in this scope", r.Kind, r.Name)}
				}
				return err
			}
		}
		if err := c.EnsureNamespace(ctx, p.Namespace, p.ID); err != nil {
			return clusterError("create namespace", err)
		}
		for _, r := range rows {
			a, err := c.Apply(ctx, r)
			if err != nil {
				return clusterError(fmt.Sprintf("apply %s %s", r.Kind, r.Name), err)
			}
			applied = append(applied, r)
			r.ObservedGeneration = a.Generation
			if err := s.audit(ctx, p.ID, "gitops.resource.created", "gitops_resource", r.ID, map[string]any{"kind": r.Kind, "name": r.Name, "namespace": r.Namespace}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		undo()
		return nil, err
	}
	return rows, nil
}

// clusterError keeps domain errors (the cluster said the spec is invalid)
// and wraps the others.
func clusterError(what string, err error) error {
	var fe *fluxgate.Error
	if errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// prefixField makes an error's field relative to a batch item.
func prefixField(err error, prefix string) error {
	var fe *fluxgate.Error
	if errors.As(err, &fe) && fe.Field != "" {
		return &fluxgate.Error{Code: fe.Code, Field: prefix + fe.Field, Message: fe.Message}
	}
	return err
}

// authorizeResource loads a resource and checks act on its environment (or
// project).
func (s *Service) authorizeResource(ctx context.Context, id string, act fluxgate.Action) (*fluxgate.GitOpsResource, *fluxgate.Project, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, nil, err
	}
	r, err := s.store.GetResource(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	env := ""
	if r.EnvironmentID != nil {
		env = *r.EnvironmentID
	}
	p, err := s.authorizeScope(ctx, r.ProjectID, env, act)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil, nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "resource %s not found", id)
	}
	return r, p, err
}

// Resource returns a GitOps resource the caller can read.
func (s *Service) Resource(ctx context.Context, id string) (*fluxgate.GitOpsResource, error) {
	r, _, err := s.authorizeResource(ctx, id, fluxgate.ActionRead)
	return r, err
}

// Resources lists a project's GitOps resources from the database (kept
// current by the watcher: no cluster round trip per request).
func (s *Service) Resources(ctx context.Context, f fluxgate.ResourceFilter) ([]*fluxgate.GitOpsResource, fluxgate.PageInfo, error) {
	_, u, err := s.authorizeProject(ctx, f.ProjectID, fluxgate.ActionRead)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if f.EnvironmentID != "" {
		if _, err := s.authorizeScope(ctx, f.ProjectID, f.EnvironmentID, fluxgate.ActionRead); err != nil {
			return nil, fluxgate.PageInfo{}, err
		}
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("kind", "unknown kind %q", f.Kind)
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("status", "unknown status %q", f.Status)
	}
	if _, err := f.Page.Validate(); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	items, pi, err := s.store.ListResources(ctx, f)
	if err != nil {
		return nil, pi, err
	}
	readable, err := s.readableEnvironments(ctx, u.ID, f.ProjectID)
	if err != nil || readable == nil {
		return items, pi, err
	}
	out := items[:0]
	for _, r := range items {
		if r.EnvironmentID != nil && readable[*r.EnvironmentID] {
			out = append(out, r)
		}
	}
	return out, pi, nil
}

// UpdateResource changes a resource's spec in the database and the cluster
// together.
func (s *Service) UpdateResource(ctx context.Context, id string, kind fluxgate.ResourceKind, spec fluxgate.ResourceSpec) (*fluxgate.GitOpsResource, error) {
	r, p, err := s.authorizeResource(ctx, id, fluxgate.ActionUpdate)
	if err != nil {
		return nil, err
	}
	if r.Kind != kind {
		return nil, fluxgate.InvalidField("id", "resource %s is a %s, not a %s", id, r.Kind, kind)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	old := r.Spec
	r.Spec = raw
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateResource(ctx, r); err != nil {
			return err
		}
		if _, err := c.Apply(ctx, r); err != nil {
			return clusterError(fmt.Sprintf("apply %s %s", r.Kind, r.Name), err)
		}
		return s.audit(ctx, p.ID, "gitops.resource.updated", "gitops_resource", r.ID, map[string]any{"kind": r.Kind, "name": r.Name, "before": json.RawMessage(old), "after": json.RawMessage(raw)})
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetResource(ctx, r.ID)
}

// DeleteResource soft-deletes a resource and deletes its object from the
// cluster (for a Kustomization, prune decides whether Flux deletes what it
// applied).
func (s *Service) DeleteResource(ctx context.Context, id string, prune *bool) error {
	r, p, err := s.authorizeResource(ctx, id, fluxgate.ActionDelete)
	if err != nil {
		return err
	}
	if prune != nil && r.Kind != fluxgate.KindKustomization {
		return fluxgate.InvalidField("prune", "prune applies to Kustomizations only")
	}
	c, err := s.cluster()
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteResource(ctx, r.ID, s.now().UTC()); err != nil {
			return err
		}
		if _, err := c.Delete(ctx, k8s.KeyOf(r), k8s.DeleteOptions{Prune: prune}); err != nil {
			return clusterError(fmt.Sprintf("delete %s %s", r.Kind, r.Name), err)
		}
		return s.audit(ctx, p.ID, "gitops.resource.deleted", "gitops_resource", r.ID, map[string]any{"kind": r.Kind, "name": r.Name, "prune": prune})
	})
}

// SyncResult is what triggerSync reports.
type SyncResult struct {
	Handled  bool
	Token    string
	Resource *fluxgate.GitOpsResource
}

// TriggerSync asks Flux to reconcile a resource now and waits up to wait
// for Flux to handle the request.
func (s *Service) TriggerSync(ctx context.Context, id string, wait time.Duration) (*SyncResult, error) {
	r, p, err := s.authorizeResource(ctx, id, fluxgate.ActionSync)
	if err != nil {
		return nil, err
	}
	if wait < 0 || wait > time.Minute {
		return nil, fluxgate.InvalidField("waitSeconds", "waitSeconds must be 0 to 60")
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	if err := s.auditNow(ctx, p.ID, "gitops.sync.started", r, nil); err != nil {
		return nil, err
	}
	res, err := c.Reconcile(ctx, k8s.KeyOf(r), wait)
	if err != nil {
		_ = s.auditNow(ctx, p.ID, "gitops.sync.failed", r, map[string]any{"error": fluxgate.ErrorMessage(err)})
		return nil, clusterError("reconcile", err)
	}
	action := "gitops.sync.completed"
	if res.Handled && res.Status.Status == fluxgate.ResourceFailed {
		action = "gitops.sync.failed"
	}
	if res.Handled {
		if err := s.ApplyResourceStatus(ctx, r.ID, res.Status); err != nil {
			return nil, err
		}
		if err := s.auditNow(ctx, p.ID, action, r, map[string]any{"status": res.Status.Status, "revision": res.Status.LastAppliedRevision}); err != nil {
			return nil, err
		}
	}
	r, err = s.store.GetResource(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return &SyncResult{Handled: res.Handled, Token: res.Token, Resource: r}, nil
}

func (s *Service) auditNow(ctx context.Context, projectID, action string, r *fluxgate.GitOpsResource, extra map[string]any) error {
	md := map[string]any{"kind": r.Kind, "name": r.Name}
	for k, v := range extra {
		md[k] = v
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, projectID, action, "gitops_resource", r.ID, md)
	})
}

// SetSuspended suspends or resumes a resource.
func (s *Service) SetSuspended(ctx context.Context, id string, suspend bool) (*fluxgate.GitOpsResource, error) {
	r, p, err := s.authorizeResource(ctx, id, fluxgate.ActionSync)
	if err != nil {
		return nil, err
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	action := "gitops.resource.resumed"
	if suspend {
		action = "gitops.resource.suspended"
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		r.Suspended = suspend
		if err := s.store.UpdateResource(ctx, r); err != nil {
			return err
		}
		if suspend {
			err = c.Suspend(ctx, k8s.KeyOf(r))
		} else {
			err = c.Resume(ctx, k8s.KeyOf(r))
		}
		if err != nil {
			return clusterError(action, err)
		}
		return s.audit(ctx, p.ID, action, "gitops_resource", r.ID, map[string]any{"kind": r.Kind, "name": r.Name})
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetResource(ctx, r.ID)
}

// GitCredentialsInput is one of basic, token or SSH credentials.
type GitCredentialsInput struct {
	ProjectID string
	Name      string
	Creds     k8s.GitCredentials
}

// CreateGitCredentials stores Git credentials as a Secret in the project's
// namespace; only its name and type are returned, never its data.
func (s *Service) CreateGitCredentials(ctx context.Context, in GitCredentialsInput) (*k8s.GitCredentialsInfo, error) {
	p, _, err := s.authorizeProject(ctx, in.ProjectID, fluxgate.ActionCreate)
	if err != nil {
		return nil, err
	}
	if err := validateDNSSubdomain("name", in.Name); err != nil {
		return nil, err
	}
	n := 0
	for _, set := range []bool{in.Creds.Basic != nil, in.Creds.Token != nil, in.Creds.SSH != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fluxgate.InvalidField("basic", "give exactly one of basic, token and ssh")
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	if err := c.EnsureNamespace(ctx, p.Namespace, p.ID); err != nil {
		return nil, clusterError("create namespace", err)
	}
	info, err := c.ApplyGitCredentials(ctx, p.Namespace, in.Name, in.Creds, map[string]string{k8s.LabelProject: p.ID})
	if err != nil {
		return nil, clusterError("store git credentials", err)
	}
	if err := s.store.InTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, p.ID, "gitops.credentials.created", "secret", info.Name, map[string]any{"type": info.Type, "namespace": info.Namespace})
	}); err != nil {
		return nil, err
	}
	return info, nil
}

// FluxHealth reports Flux's state in the cluster, or why it cannot.
func (s *Service) FluxHealth(ctx context.Context) (*FluxHealth, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	c, err := s.cluster()
	if err != nil {
		return &FluxHealth{Message: fluxgate.ErrorMessage(err)}, nil
	}
	h, err := c.FluxHealth(ctx)
	if err != nil {
		return &FluxHealth{Message: "cluster did not answer: " + err.Error()}, nil
	}
	return &FluxHealth{Installed: h.Installed, Ready: h.Ready, CRDs: h.CRDs, Components: h.Components}, nil
}

// DiagnoseGitRepository looks for what keeps a GitRepository from working.
func (s *Service) DiagnoseGitRepository(ctx context.Context, id string) (*k8s.Diagnosis, error) {
	r, _, err := s.authorizeResource(ctx, id, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	if r.Kind != fluxgate.KindGitRepository {
		return nil, fluxgate.InvalidField("id", "resource %s is a %s, not a GitRepository", id, r.Kind)
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	d, err := c.DiagnoseGitRepository(ctx, r.Namespace, r.Name)
	if err != nil {
		return nil, clusterError("diagnose", err)
	}
	return d, nil
}

// InstallFlux applies a Flux install bundle (administrators only).
func (s *Service) InstallFlux(ctx context.Context, manifests []byte, wait time.Duration) (*k8s.InstallResult, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if !s.admins[u.Subject] {
		return nil, fluxgate.Errorf(fluxgate.EFORBIDDEN, "only fluxgate administrators may install Flux")
	}
	if len(manifests) == 0 {
		manifests = s.fluxBundle
	}
	if len(manifests) == 0 {
		return nil, fluxgate.InvalidField("manifests", "no install bundle given and none configured (FLUXGATE_FLUX_BUNDLE)")
	}
	if wait < 0 || wait > 5*time.Minute {
		return nil, fluxgate.InvalidField("waitSeconds", "waitSeconds must be 0 to 300")
	}
	c, err := s.cluster()
	if err != nil {
		return nil, err
	}
	res, err := c.InstallFlux(ctx, manifests, k8s.InstallOptions{Wait: wait})
	if err != nil {
		return nil, clusterError("install flux", err)
	}
	if err := s.store.InTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, "", "flux.installed", "cluster", "flux-system", map[string]any{"applied": len(res.Applied)})
	}); err != nil {
		return nil, err
	}
	return res, nil
}
