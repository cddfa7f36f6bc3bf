package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/localcluster"
	"github.com/fluxgate/fluxgate/localcluster/demo"
	"github.com/fluxgate/fluxgate/service"
)

// clusterSource hands the service the cluster client once it is ready;
// until then it says why not (local cluster building, starting, failed).
type clusterSource struct {
	mu      sync.Mutex
	client  service.Cluster
	waiting func() error
}

func (s *clusterSource) Cluster() (service.Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	if s.waiting != nil {
		if err := s.waiting(); err != nil {
			return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "%v", err)
		}
	}
	return nil, fluxgate.Errorf(fluxgate.EUNAVAILABLE, "cluster not connected yet")
}

func (s *clusterSource) set(c service.Cluster) {
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
}

// ready is the /readyz check of the cluster.
func (s *clusterSource) ready(context.Context) error {
	_, err := s.Cluster()
	if err != nil {
		return errors.New(fluxgate.ErrorMessage(err))
	}
	return nil
}

// openCluster connects to the configured cluster, or starts the local one
// when none is configured. It returns at once; the client is handed to the
// service, and the watcher started, as soon as the cluster answers.
func (m *Main) openCluster(ctx context.Context, src *clusterSource, svc *service.Service, reg prometheus.Registerer) error {
	c := &m.Config
	inCluster := os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	if c.Kubeconfig != "" || inCluster || c.KubeContext != "" {
		cfg, err := k8s.RESTConfig(k8s.ConfigOptions{Kubeconfig: c.Kubeconfig, Context: c.KubeContext, InCluster: inCluster})
		if err != nil {
			return err
		}
		return m.connectCluster(ctx, cfg, src, svc, reg, nil)
	}
	if !c.LocalCluster {
		m.logger.Warn("no cluster configured and the local cluster is off: GitOps operations answer UNAVAILABLE")
		src.waiting = func() error { return errors.New("no Kubeconfig configured and the local cluster is disabled") }
		return nil
	}
	lc, err := localcluster.New(localcluster.Config{
		DataDir:  filepath.Join(c.DataDir, "cluster"),
		Progress: m.stdout,
	})
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	src.waiting = func() error {
		_, err := lc.RESTConfig()
		return err
	}
	if err := lc.Start(ctx); err != nil {
		return fmt.Errorf("start local cluster: %w", err)
	}
	m.closers = append(m.closers, lc.Stop)
	go func() {
		if err := lc.Wait(ctx); err != nil {
			if ctx.Err() == nil {
				m.logger.Error("local cluster did not start", "err", err)
			}
			return
		}
		cfg, err := lc.RESTConfig()
		if err == nil {
			err = m.connectCluster(ctx, cfg, src, svc, reg, func(kc *k8s.Client) service.Cluster { return localFlux{Client: kc, lc: lc} })
		}
		if err != nil {
			m.logger.Error("connect to local cluster", "err", err)
			return
		}
		m.logger.Info("local cluster ready", "kubeconfig", lc.KubeconfigPath(), "git", lc.GitBaseURL())
		if c.DevMode() && c.SeedDemo {
			if err := seedDemoResources(ctx, svc, lc.GitURL(demo.RepoName)); err != nil {
				m.logger.Error("seed demo GitOps resources", "err", err)
			}
		}
	}()
	return nil
}

// connectCluster makes the client, hands it to the service and runs the
// watcher on whichever replica holds the Lease.
func (m *Main) connectCluster(ctx context.Context, cfg *rest.Config, src *clusterSource, svc *service.Service, reg prometheus.Registerer, wrap func(*k8s.Client) service.Cluster) error {
	kc, err := k8s.New(cfg, k8s.Options{Logger: m.logger})
	if err != nil {
		return err
	}
	var c service.Cluster = kc
	if wrap != nil {
		c = wrap(kc)
	}
	metrics, err := k8s.NewMetrics(reg)
	if err != nil {
		return err
	}
	w, err := k8s.NewWatcher(cfg, svc.WatchSink(), k8s.WatcherOptions{Metrics: metrics, Logger: m.logger})
	if err != nil {
		return err
	}
	el, err := k8s.NewElector(cfg, k8s.LeaderOptions{Namespace: m.Config.LeaseNamespace, Logger: m.logger})
	if err != nil {
		return err
	}
	src.set(c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := el.Run(ctx, leaderRun(svc, w, m.logger)); err != nil && ctx.Err() == nil {
			m.logger.Error("cluster watcher stopped", "err", err)
		}
	}()
	m.closers = append(m.closers, func(stop context.Context) error {
		select {
		case <-done:
		case <-stop.Done():
		}
		return nil
	})
	return nil
}

// seedDemoResources connects the local demo repository to the demo project
// and gives each of its environments a GitRepository and a Kustomization
// (with a health check on the Deployment). The Git server's port can change
// between runs, so existing GitRepositories get the current URL.
func seedDemoResources(ctx context.Context, svc *service.Service, gitURL string) error {
	dev, err := svc.SignIn(ctx, service.Identity{Subject: auth.DevSubject, Name: "Developer", Email: "dev@fluxgate.local"})
	if err != nil {
		return err
	}
	ctx = fluxgate.NewContextWithUser(ctx, dev)
	p, err := svc.ProjectBySlug(ctx, "demo")
	if err != nil {
		return err
	}
	repos, err := svc.Repositories(ctx, p.ID)
	if err != nil {
		return err
	}
	var repoID string
	for _, r := range repos {
		if r.FullName == demo.RepoName {
			repoID = r.ID
			if r.CloneURL != gitURL {
				if _, err := svc.UpdateRepository(ctx, service.UpdateRepositoryInput{ID: r.ID, CloneURL: &gitURL}); err != nil {
					return err
				}
			}
		}
	}
	if repoID == "" {
		r, err := svc.ConnectRepository(ctx, service.ConnectRepositoryInput{ProjectID: p.ID, CloneURL: gitURL, FullName: demo.RepoName, Provider: "local"})
		if err != nil {
			return err
		}
		repoID = r.ID
	}
	envs, err := svc.Environments(ctx, p.ID)
	if err != nil {
		return err
	}
	existing, _, err := svc.Resources(ctx, fluxgate.ResourceFilter{ProjectID: p.ID, Page: fluxgate.Page{First: fluxgate.MaxPageSize}})
	if err != nil {
		return err
	}
	find := func(kind fluxgate.ResourceKind, name string) *fluxgate.GitOpsResource {
		for _, r := range existing {
			if r.Kind == kind && r.Name == name {
				return r
			}
		}
		return nil
	}
	for _, env := range envs {
		name := "demo-" + env.Name
		gitSpec := &fluxgate.GitRepositorySpec{URL: gitURL, Ref: fluxgate.GitRef{Branch: env.GitOps.GitBranch}, Interval: env.GitOps.SyncInterval}
		if r := find(fluxgate.KindGitRepository, name); r != nil {
			var cur fluxgate.GitRepositorySpec
			if err := json.Unmarshal(r.Spec, &cur); err == nil && cur.URL != gitURL {
				if _, err := svc.UpdateResource(ctx, r.ID, fluxgate.KindGitRepository, gitSpec); err != nil {
					return err
				}
			}
		} else {
			ks := &fluxgate.KustomizationSpec{
				SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: name},
				Path:      "./" + env.GitOps.GitPath, Prune: true, HealthChecks: env.HealthChecks,
				Interval: env.GitOps.SyncInterval, Timeout: "2m", RetryInterval: "20s",
				TargetNamespace: demo.Namespace(env.Name),
			}
			if _, err := svc.BatchCreateResources(ctx, p.ID, []service.ResourceInput{
				{ProjectID: p.ID, EnvironmentID: env.ID, RepositoryID: repoID, Kind: fluxgate.KindGitRepository, Name: name, Spec: gitSpec},
				{ProjectID: p.ID, EnvironmentID: env.ID, RepositoryID: repoID, Kind: fluxgate.KindKustomization, Name: name, Spec: ks},
			}); err != nil {
				return err
			}
		}
	}
	// Ask Flux to act now rather than at its next interval.
	for _, r := range existing {
		if r.Kind == fluxgate.KindGitRepository {
			if _, err := svc.TriggerSync(ctx, r.ID, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// localFlux is the local cluster's client: its Flux controllers run as
// supervised processes rather than Deployments in flux-system, so their
// health comes from the supervisor.
type localFlux struct {
	*k8s.Client
	lc *localcluster.Cluster
}

// localControllers are the Flux controllers the local cluster runs.
var localControllers = map[string]bool{"source-controller": true, "kustomize-controller": true}

func (l localFlux) FluxHealth(ctx context.Context) (*k8s.FluxHealth, error) {
	h, err := l.Client.FluxHealth(ctx)
	if err != nil {
		return nil, err
	}
	h.Components = h.Components[:0]
	h.Ready = h.Installed
	for _, c := range l.lc.Status().Components {
		if !localControllers[c.Name] {
			continue
		}
		ready := c.State == localcluster.StateReady
		msg := fmt.Sprintf("local process, pid %d, %s", c.PID, c.State)
		if c.Error != "" {
			msg += ": " + c.Error
		}
		h.Components = append(h.Components, k8s.ComponentHealth{
			Name: c.Name, Namespace: localcluster.FluxNamespace, Required: true, Present: true, Ready: ready, Message: msg,
		})
		h.Ready = h.Ready && ready
	}
	return h, nil
}

// leaderRun is what the Lease holder runs: the deployment tracker resumes
// the open deployments and checks their timeouts while the watcher feeds
// it (docs/deployment-tracking.md).
func leaderRun(svc *service.Service, w *k8s.Watcher, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		t := svc.Tracker()
		if _, err := t.Resume(ctx); err != nil {
			log.Warn("resume deployment tracking", "err", err)
		}
		go t.Run(ctx, 15*time.Second)
		return w.Run(ctx)
	}
}
