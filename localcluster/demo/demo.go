// Package demo holds the demo Git repository that the local cluster seeds
// once: k8s/base (a Deployment with 2 replicas and a Service, commented) and
// the kustomize overlays k8s/overlays/development and k8s/overlays/production.
package demo

import (
	"embed"
	"io/fs"
)

// Names used by the demo repository.
const (
	// RepoName is the repository's name on the local Git server.
	RepoName = "demo"
	// DeploymentName is the Deployment the overlays produce.
	DeploymentName = "demo-app"
	// ContainerName is the Deployment's only container.
	ContainerName = "app"
	// CommitMessage is the message of the seed commit.
	CommitMessage = "Add demo-app manifests (k8s/base and overlays)"
)

// Environments returns the names of the demo overlays.
func Environments() []string { return []string{"development", "production"} }

// Namespace is the namespace the local cluster creates for env's workload
// (use it as the Kustomization's targetNamespace).
func Namespace(env string) string { return "demo-" + env }

// OverlayPath is the path a Flux Kustomization applies for env.
func OverlayPath(env string) string { return "./k8s/overlays/" + env }

// ManifestPath is the file fluxgate edits to deploy to env.
func ManifestPath(env string) string { return "k8s/overlays/" + env + "/deployment.yaml" }

//go:embed all:repo
var files embed.FS

// Files returns the repository's files rooted at the repository root.
func Files() fs.FS {
	sub, err := fs.Sub(files, "repo")
	if err != nil {
		return files
	}
	return sub
}
