package fluxgate

import "time"

// RepositoryGitOps is how Flux syncs a repository.
type RepositoryGitOps struct {
	Enabled          bool   `json:"enabled"`
	FluxNamespace    string `json:"fluxNamespace"`
	FluxResourceName string `json:"fluxResourceName"`
	SyncInterval     string `json:"syncInterval"`
	SecretRef        string `json:"secretRef"`
	Timeout          string `json:"timeout"`
}

// Repository is a Git repository connected to a project.
type Repository struct {
	ID             string           `json:"id" db:"id"`
	ProjectID      string           `json:"projectId" db:"project_id"`
	Provider       string           `json:"provider" db:"provider"`
	FullName       string           `json:"fullName" db:"full_name"`
	CloneURL       string           `json:"cloneUrl" db:"clone_url"`
	DefaultBranch  string           `json:"defaultBranch" db:"default_branch"`
	GitOps         RepositoryGitOps `json:"gitops" db:"gitops"`
	FluxSyncStatus string           `json:"fluxSyncStatus" db:"flux_sync_status"`
	FluxLastCommit string           `json:"fluxLastCommit" db:"flux_last_commit"`
	FluxLastSyncAt *time.Time       `json:"fluxLastSyncAt,omitempty" db:"flux_last_sync_at"`
	FluxSyncError  string           `json:"fluxSyncError" db:"flux_sync_error"`
	CreatedAt      time.Time        `json:"createdAt" db:"created_at"`
	UpdatedAt      time.Time        `json:"updatedAt" db:"updated_at"`
	DeletedAt      *time.Time       `json:"deletedAt,omitempty" db:"deleted_at"`
}
