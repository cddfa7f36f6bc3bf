package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/auth"
	"github.com/fluxgate/fluxgate/service"
)

// seedDemo creates, once per data dir, the demo project owned by the
// development user: environments development (auto-sync) and production
// (approval required, 2 approvals).
func seedDemo(ctx context.Context, svc *service.Service, dataDir string) error {
	marker := filepath.Join(dataDir, "demo-seeded")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	dev, err := svc.SignIn(ctx, service.Identity{Subject: auth.DevSubject, Name: "Developer", Email: "dev@fluxgate.local"})
	if err != nil {
		return err
	}
	ctx = fluxgate.NewContextWithUser(ctx, dev)
	p, err := svc.ProjectBySlug(ctx, "demo")
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		p, err = svc.CreateProject(ctx, service.CreateProjectInput{
			Slug: "demo", Name: "Demo", Description: "A demo web app deployed through Flux.",
			Namespace: "demo", DeploymentMode: fluxgate.DeploymentModeHybrid,
		})
	}
	if err != nil {
		return err
	}
	envs := []service.CreateEnvironmentInput{
		{ProjectID: p.ID, Name: "development", Type: fluxgate.EnvironmentDevelopment,
			GitOps:       &fluxgate.EnvironmentGitOps{Enabled: true, AutoSync: true, GitBranch: "main", GitPath: "k8s/overlays/development", SyncInterval: "1m"},
			HealthChecks: []fluxgate.HealthCheck{{APIVersion: "apps/v1", Kind: "Deployment", Name: "demo-app", Namespace: "demo-development"}}},
		{ProjectID: p.ID, Name: "production", Type: fluxgate.EnvironmentProduction,
			GitOps:       &fluxgate.EnvironmentGitOps{Enabled: true, AutoSync: true, GitBranch: "main", GitPath: "k8s/overlays/production", SyncInterval: "1m"},
			Approval:     &fluxgate.ApprovalPolicy{Required: true, MinApprovals: 2},
			HealthChecks: []fluxgate.HealthCheck{{APIVersion: "apps/v1", Kind: "Deployment", Name: "demo-app", Namespace: "demo-production"}}},
	}
	for _, in := range envs {
		if _, err := svc.CreateEnvironment(ctx, in); err != nil && fluxgate.ErrorCode(err) != fluxgate.ECONFLICT {
			return err
		}
	}
	if err := os.WriteFile(marker, []byte("1\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
