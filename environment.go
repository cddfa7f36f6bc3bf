package fluxgate

import "time"

// EnvironmentType classifies an environment.
type EnvironmentType string

const (
	EnvironmentDevelopment EnvironmentType = "development"
	EnvironmentStaging     EnvironmentType = "staging"
	EnvironmentProduction  EnvironmentType = "production"
)

// Valid reports whether t is a known type.
func (t EnvironmentType) Valid() bool {
	switch t {
	case EnvironmentDevelopment, EnvironmentStaging, EnvironmentProduction:
		return true
	}
	return false
}

// EnvironmentGitOps is an environment's GitOps configuration.
type EnvironmentGitOps struct {
	Enabled      bool   `json:"enabled"`
	AutoSync     bool   `json:"autoSync"`
	GitBranch    string `json:"gitBranch"`
	GitPath      string `json:"gitPath"`
	SyncInterval string `json:"syncInterval"`
	// ProgressTimeout is how long a deployment may wait for Flux's next
	// step before it fails (a duration; empty: DefaultProgressTimeout).
	ProgressTimeout string `json:"progressTimeout,omitempty"`
}

// DefaultProgressTimeout is an environment's progress timeout when it sets
// none.
const DefaultProgressTimeout = 10 * time.Minute

// ProgressTimeoutOrDefault is the environment's progress timeout as a
// duration.
func (g EnvironmentGitOps) ProgressTimeoutOrDefault() time.Duration {
	if d, err := time.ParseDuration(g.ProgressTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultProgressTimeout
}

// ApprovalPolicy holds deploys to an environment until enough approvers agree.
type ApprovalPolicy struct {
	Required     bool     `json:"required"`
	MinApprovals int      `json:"minApprovals"`
	ApproverIDs  []string `json:"approverIds"`
}

// HealthCheck names a workload Flux waits for after applying.
type HealthCheck struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// SubjectType says whether a permission names a user or a team.
type SubjectType string

const (
	SubjectUser SubjectType = "user"
	SubjectTeam SubjectType = "team"
)

// EnvPermissionLevel is what an environment permission grants.
type EnvPermissionLevel string

const (
	EnvPermissionRead   EnvPermissionLevel = "read"
	EnvPermissionDeploy EnvPermissionLevel = "deploy"
	EnvPermissionAdmin  EnvPermissionLevel = "admin"
)

// Valid reports whether l is a known level.
func (l EnvPermissionLevel) Valid() bool {
	switch l {
	case EnvPermissionRead, EnvPermissionDeploy, EnvPermissionAdmin:
		return true
	}
	return false
}

// EnvPermission grants a user or team a level on one environment.
type EnvPermission struct {
	SubjectType SubjectType        `json:"subjectType"`
	SubjectID   string             `json:"subjectId"`
	Permission  EnvPermissionLevel `json:"permission"`
}

// Environment is a deploy target of a project (development, staging, ...).
type Environment struct {
	ID           string            `json:"id" db:"id"`
	ProjectID    string            `json:"projectId" db:"project_id"`
	Name         string            `json:"name" db:"name"`
	Type         EnvironmentType   `json:"type" db:"type"`
	GitOps       EnvironmentGitOps `json:"gitops" db:"gitops"`
	Approval     ApprovalPolicy    `json:"approval" db:"approval"`
	HealthChecks []HealthCheck     `json:"healthChecks" db:"health_checks"`
	Permissions  []EnvPermission   `json:"permissions" db:"permissions"`
	CreatedAt    time.Time         `json:"createdAt" db:"created_at"`
	UpdatedAt    time.Time         `json:"updatedAt" db:"updated_at"`
	DeletedAt    *time.Time        `json:"deletedAt,omitempty" db:"deleted_at"`
}
