package fluxgate

import (
	"context"
	"time"
)

// Store persists fluxgate's entities. Implementations: store.DB on SQLite
// and PostgreSQL.
//
// Transactions travel in the context: inside InTx every method called with
// the callback's ctx runs in the same transaction, so a service writes a
// change and its audit entry atomically.
//
// Errors: ENOTFOUND when a row does not exist (soft-deleted rows do not
// exist), ECONFLICT on a uniqueness violation, EINVALID on a bad cursor.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	Ping(ctx context.Context) error
	Close() error

	// UpsertUser creates the user with u.Subject or updates its name,
	// email and avatar; u.ID and timestamps are filled in.
	UpsertUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserBySubject(ctx context.Context, subject string) (*User, error)
	// GetUsers returns the users with ids, in the order of ids; a missing
	// user is a nil entry.
	GetUsers(ctx context.Context, ids []string) ([]*User, error)

	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, id string) (*Team, error)
	ListTeams(ctx context.Context, page Page) ([]*Team, PageInfo, error)
	DeleteTeam(ctx context.Context, id string, at time.Time) error
	AddTeamMember(ctx context.Context, m *TeamMember) error
	RemoveTeamMember(ctx context.Context, teamID, userID string) error
	ListTeamMembers(ctx context.Context, teamID string) ([]*TeamMember, error)
	// TeamIDsForUser lists the (non-deleted) teams the user belongs to.
	TeamIDsForUser(ctx context.Context, userID string) ([]string, error)

	CreateProject(ctx context.Context, p *Project) error
	GetProject(ctx context.Context, id string) (*Project, error)
	GetProjectBySlug(ctx context.Context, slug string) (*Project, error)
	ListProjects(ctx context.Context, f ProjectFilter) ([]*Project, PageInfo, error)
	UpdateProject(ctx context.Context, p *Project) error
	DeleteProject(ctx context.Context, id string, at time.Time) error

	AddProjectMember(ctx context.Context, m *ProjectMember) error
	GetProjectMember(ctx context.Context, projectID, userID string) (*ProjectMember, error)
	ListProjectMembers(ctx context.Context, projectID string) ([]*ProjectMember, error)
	UpdateProjectMember(ctx context.Context, m *ProjectMember) error
	RemoveProjectMember(ctx context.Context, projectID, userID string) error

	CreateEnvironment(ctx context.Context, e *Environment) error
	GetEnvironment(ctx context.Context, id string) (*Environment, error)
	GetEnvironmentByName(ctx context.Context, projectID, name string) (*Environment, error)
	ListEnvironments(ctx context.Context, projectID string) ([]*Environment, error)
	UpdateEnvironment(ctx context.Context, e *Environment) error
	DeleteEnvironment(ctx context.Context, id string, at time.Time) error

	CreateRepository(ctx context.Context, r *Repository) error
	GetRepository(ctx context.Context, id string) (*Repository, error)
	ListRepositories(ctx context.Context, projectID string) ([]*Repository, error)
	UpdateRepository(ctx context.Context, r *Repository) error
	DeleteRepository(ctx context.Context, id string, at time.Time) error
	// SetRepositoryCredentials stores a repository's sealed push
	// credentials (nil clears them); ENOTFOUND if it is not live.
	SetRepositoryCredentials(ctx context.Context, id string, sealed []byte) error
	// GetRepositoryCredentials returns them, nil when none are stored;
	// ENOTFOUND if the repository is not live.
	GetRepositoryCredentials(ctx context.Context, id string) ([]byte, error)

	CreateResource(ctx context.Context, r *GitOpsResource) error
	GetResource(ctx context.Context, id string) (*GitOpsResource, error)
	// FindResourceByObject finds the live resource for a cluster object.
	FindResourceByObject(ctx context.Context, kind ResourceKind, namespace, name string) (*GitOpsResource, error)
	ListResources(ctx context.Context, f ResourceFilter) ([]*GitOpsResource, PageInfo, error)
	UpdateResource(ctx context.Context, r *GitOpsResource) error
	UpdateResourceStatus(ctx context.Context, id string, u ResourceStatusUpdate) error
	DeleteResource(ctx context.Context, id string, at time.Time) error

	CreateDeployment(ctx context.Context, d *Deployment) error
	GetDeployment(ctx context.Context, id string) (*Deployment, error)
	ListDeployments(ctx context.Context, f DeploymentFilter) ([]*Deployment, PageInfo, error)
	// ListOpenDeployments lists deployments not yet in a terminal status.
	ListOpenDeployments(ctx context.Context) ([]*Deployment, error)
	FindDeploymentByCommit(ctx context.Context, environmentID, commitSHA string) (*Deployment, error)
	UpdateDeployment(ctx context.Context, d *Deployment) error
	// UpdateDeploymentFrom is UpdateDeployment only while the stored status
	// is from (compare-and-swap; the row stays locked until the
	// transaction ends). ECONFLICT when the status differs, ENOTFOUND when
	// there is no such deployment.
	UpdateDeploymentFrom(ctx context.Context, d *Deployment, from DeploymentStatus) error

	CreateApproval(ctx context.Context, a *Approval) error
	ListApprovals(ctx context.Context, deploymentID string) ([]*Approval, error)
	// ListApprovalsOf lists the decisions on each deployment, in the order
	// of deploymentIDs (a dataloader batch).
	ListApprovalsOf(ctx context.Context, deploymentIDs []string) ([][]*Approval, error)

	CreateAuditEntry(ctx context.Context, e *AuditEntry) error
	ListAuditEntries(ctx context.Context, f AuditFilter) ([]*AuditEntry, PageInfo, error)

	// CreateFluxEvent stores e and fills in Seq; an event whose DedupKey was
	// stored before is not stored again and inserted is false.
	CreateFluxEvent(ctx context.Context, e *FluxEvent) (inserted bool, err error)
	ListFluxEvents(ctx context.Context, f FluxEventFilter) ([]*FluxEvent, PageInfo, error)
}
