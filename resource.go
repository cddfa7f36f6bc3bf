package fluxgate

import (
	"encoding/json"
	"time"
)

// ResourceKind is the kind of a Flux object fluxgate manages.
type ResourceKind string

const (
	KindGitRepository   ResourceKind = "GitRepository"
	KindKustomization   ResourceKind = "Kustomization"
	KindHelmRelease     ResourceKind = "HelmRelease"
	KindHelmRepository  ResourceKind = "HelmRepository"
	KindImageRepository ResourceKind = "ImageRepository"
	KindImagePolicy     ResourceKind = "ImagePolicy"
)

// Valid reports whether k is a kind fluxgate manages.
func (k ResourceKind) Valid() bool {
	switch k {
	case KindGitRepository, KindKustomization, KindHelmRelease, KindHelmRepository, KindImageRepository, KindImagePolicy:
		return true
	}
	return false
}

// ResourceStatus is the domain view of a Flux object's readiness.
type ResourceStatus string

const (
	ResourcePending     ResourceStatus = "pending"
	ResourceReconciling ResourceStatus = "reconciling"
	ResourceReady       ResourceStatus = "ready"
	ResourceFailed      ResourceStatus = "failed"
	ResourceSuspended   ResourceStatus = "suspended"
)

// Valid reports whether s is a known status.
func (s ResourceStatus) Valid() bool {
	switch s {
	case ResourcePending, ResourceReconciling, ResourceReady, ResourceFailed, ResourceSuspended:
		return true
	}
	return false
}

// Condition is a Kubernetes status condition as Flux reports it.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
	ObservedGeneration int64     `json:"observedGeneration,omitempty"`
}

// InventoryEntry is one object a Kustomization or HelmRelease applied.
type InventoryEntry struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

// GitOpsResource is a Flux object owned by a project, stored in the database
// and applied to the cluster. Spec holds the kind-specific configuration as
// JSON (see the *Spec types); status fields mirror what Flux reports.
type GitOpsResource struct {
	ID                    string           `json:"id" db:"id"`
	ProjectID             string           `json:"projectId" db:"project_id"`
	EnvironmentID         *string          `json:"environmentId,omitempty" db:"environment_id"`
	RepositoryID          *string          `json:"repositoryId,omitempty" db:"repository_id"`
	Kind                  ResourceKind     `json:"kind" db:"kind"`
	Name                  string           `json:"name" db:"name"`
	Namespace             string           `json:"namespace" db:"namespace"`
	Spec                  json.RawMessage  `json:"spec" db:"spec"`
	Status                ResourceStatus   `json:"status" db:"status"`
	Suspended             bool             `json:"suspended" db:"suspended"`
	Conditions            []Condition      `json:"conditions" db:"conditions"`
	Inventory             []InventoryEntry `json:"inventory" db:"inventory"`
	LastAppliedRevision   string           `json:"lastAppliedRevision" db:"last_applied_revision"`
	LastAttemptedRevision string           `json:"lastAttemptedRevision" db:"last_attempted_revision"`
	ErrorMessage          string           `json:"errorMessage" db:"error_message"`
	ObservedGeneration    int64            `json:"observedGeneration" db:"observed_generation"`
	LastReconciledAt      *time.Time       `json:"lastReconciledAt,omitempty" db:"last_reconciled_at"`
	CreatedBy             string           `json:"createdBy" db:"created_by"`
	CreatedAt             time.Time        `json:"createdAt" db:"created_at"`
	UpdatedAt             time.Time        `json:"updatedAt" db:"updated_at"`
	DeletedAt             *time.Time       `json:"deletedAt,omitempty" db:"deleted_at"`
}

// ResourceFilter narrows a GitOps resource listing.
type ResourceFilter struct {
	ProjectID     string
	EnvironmentID string
	Kind          ResourceKind
	Status        ResourceStatus
	Page          Page
}

// ResourceStatusUpdate is what the watcher learned about a resource.
type ResourceStatusUpdate struct {
	Status                ResourceStatus
	Suspended             bool
	Conditions            []Condition
	Inventory             []InventoryEntry
	LastAppliedRevision   string
	LastAttemptedRevision string
	ErrorMessage          string
	ObservedGeneration    int64
	LastReconciledAt      *time.Time
}
