package fluxgate

import (
	"encoding/json"
	"time"
)

// DeploymentMethod says how a deployment came about.
type DeploymentMethod string

const (
	MethodManual    DeploymentMethod = "manual"     // applied directly, no Git
	MethodGitOpsUI  DeploymentMethod = "gitops-ui"  // a click in the UI became a commit
	MethodGitOpsGit DeploymentMethod = "gitops-git" // someone pushed; Flux picked it up
	MethodPipeline  DeploymentMethod = "pipeline"   // a CI pipeline
)

// DeploymentStatus is where a deployment stands.
type DeploymentStatus string

const (
	DeploymentAwaitingApproval DeploymentStatus = "awaiting_approval"
	DeploymentPending          DeploymentStatus = "pending"
	DeploymentInProgress       DeploymentStatus = "in_progress"
	DeploymentSucceeded        DeploymentStatus = "succeeded"
	DeploymentFailed           DeploymentStatus = "failed"
	DeploymentRejected         DeploymentStatus = "rejected"
	DeploymentSuperseded       DeploymentStatus = "superseded"
)

// Terminal reports whether no further progress can happen.
func (s DeploymentStatus) Terminal() bool {
	switch s {
	case DeploymentSucceeded, DeploymentFailed, DeploymentRejected, DeploymentSuperseded:
		return true
	}
	return false
}

// DeploymentStepName names the four steps of GitOps progress.
type DeploymentStepName string

const (
	StepCommitted DeploymentStepName = "committed" // commit pushed
	StepFetched   DeploymentStepName = "fetched"   // Flux fetched the revision
	StepApplied   DeploymentStepName = "applied"   // Flux applied it to the cluster
	StepHealthy   DeploymentStepName = "healthy"   // workloads rolled out
)

// DeploymentStep is one step with the moment it was reached.
type DeploymentStep struct {
	Name      DeploymentStepName `json:"name"`
	Status    string             `json:"status"` // pending, done, failed
	At        *time.Time         `json:"at,omitempty"`
	Message   string             `json:"message,omitempty"`
	ReadyPods int                `json:"readyPods,omitempty"`
	TotalPods int                `json:"totalPods,omitempty"`
}

// Deployment is one change rolled out to an environment.
type Deployment struct {
	ID            string           `json:"id" db:"id"`
	ProjectID     string           `json:"projectId" db:"project_id"`
	EnvironmentID string           `json:"environmentId" db:"environment_id"`
	ResourceID    *string          `json:"resourceId,omitempty" db:"resource_id"`
	Version       string           `json:"version" db:"version"`
	CommitSHA     string           `json:"commitSha" db:"commit_sha"`
	Branch        string           `json:"branch" db:"branch"`
	Strategy      string           `json:"strategy" db:"strategy"`
	Status        DeploymentStatus `json:"status" db:"status"`
	Method        DeploymentMethod `json:"method" db:"method"`
	Message       string           `json:"message" db:"message"`
	DeployedBy    string           `json:"deployedBy" db:"deployed_by"`
	// CommitAuthor is the Git author of CommitSHA.
	CommitAuthor CommitAuthor     `json:"commitAuthor"`
	Change       json.RawMessage  `json:"change" db:"change"`
	Steps        []DeploymentStep `json:"steps" db:"steps"`
	RollbackOf   *string          `json:"rollbackOf,omitempty" db:"rollback_of"`
	StartedAt    time.Time        `json:"startedAt" db:"started_at"`
	FinishedAt   *time.Time       `json:"finishedAt,omitempty" db:"finished_at"`
	CreatedAt    time.Time        `json:"createdAt" db:"created_at"`
	UpdatedAt    time.Time        `json:"updatedAt" db:"updated_at"`
}

// CommitAuthor is a commit's author as Git records it.
type CommitAuthor struct {
	Name  string `json:"name" db:"commit_author_name"`
	Email string `json:"email" db:"commit_author_email"`
}

// DeploymentFilter narrows a deployment listing.
type DeploymentFilter struct {
	ProjectID     string
	EnvironmentID string
	Status        DeploymentStatus
	Page          Page
}

// ApprovalDecision is an approver's answer.
type ApprovalDecision string

const (
	ApprovalApproved ApprovalDecision = "approved"
	ApprovalRejected ApprovalDecision = "rejected"
)

// Approval is one approver's decision on a deployment.
type Approval struct {
	ID           string           `json:"id" db:"id"`
	DeploymentID string           `json:"deploymentId" db:"deployment_id"`
	UserID       string           `json:"userId" db:"user_id"`
	Decision     ApprovalDecision `json:"decision" db:"decision"`
	Comment      string           `json:"comment" db:"comment"`
	CreatedAt    time.Time        `json:"createdAt" db:"created_at"`
}
