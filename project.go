package fluxgate

import "time"

// DeploymentMode says how changes reach an environment's Git branch.
type DeploymentMode string

const (
	DeploymentModeUIFirst  DeploymentMode = "ui-first"  // people deploy from the UI; fluxgate commits
	DeploymentModeGitFirst DeploymentMode = "git-first" // people push to Git; fluxgate shows it
	DeploymentModeHybrid   DeploymentMode = "hybrid"    // both
)

// Valid reports whether m is a known mode.
func (m DeploymentMode) Valid() bool {
	switch m {
	case DeploymentModeUIFirst, DeploymentModeGitFirst, DeploymentModeHybrid:
		return true
	}
	return false
}

// Project is the unit of tenancy: every environment, repository and GitOps
// resource belongs to exactly one project, and projects never see each other.
type Project struct {
	ID             string         `json:"id" db:"id"`
	Slug           string         `json:"slug" db:"slug"`
	Name           string         `json:"name" db:"name"`
	Description    string         `json:"description" db:"description"`
	Namespace      string         `json:"namespace" db:"namespace"`
	GitOpsEnabled  bool           `json:"gitopsEnabled" db:"gitops_enabled"`
	DeploymentMode DeploymentMode `json:"deploymentMode" db:"deployment_mode"`
	CreatedBy      string         `json:"createdBy" db:"created_by"`
	CreatedAt      time.Time      `json:"createdAt" db:"created_at"`
	UpdatedAt      time.Time      `json:"updatedAt" db:"updated_at"`
	DeletedAt      *time.Time     `json:"deletedAt,omitempty" db:"deleted_at"`
}

// ProjectMember gives a user a role in a project.
type ProjectMember struct {
	ProjectID string    `json:"projectId" db:"project_id"`
	UserID    string    `json:"userId" db:"user_id"`
	Role      Role      `json:"role" db:"role"`
	CreatedAt time.Time `json:"createdAt" db:"created_at"`
	UpdatedAt time.Time `json:"updatedAt" db:"updated_at"`
}

// ProjectFilter narrows a project listing.
type ProjectFilter struct {
	// MemberUserID, when set, lists only projects where that user is a member.
	MemberUserID string
	Page         Page
}
