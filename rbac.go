package fluxgate

// Role is a user's role in a project.
type Role string

const (
	RoleOwner      Role = "owner"
	RoleMaintainer Role = "maintainer"
	RoleDeveloper  Role = "developer"
	RoleViewer     Role = "viewer"
)

// Roles lists every role, strongest first.
var Roles = []Role{RoleOwner, RoleMaintainer, RoleDeveloper, RoleViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleMaintainer, RoleDeveloper, RoleViewer:
		return true
	}
	return false
}

// Action is something a caller wants to do in a project.
type Action string

const (
	ActionRead          Action = "read"           // see the project and everything in it
	ActionCreate        Action = "create"         // create environments, repositories, resources
	ActionUpdate        Action = "update"         // change them, commit config
	ActionDelete        Action = "delete"         // delete them
	ActionSync          Action = "sync"           // reconcile, suspend/resume, deploy
	ActionManageMembers Action = "manage_members" // add, re-role, remove members; delete the project
)

// Actions lists every action.
var Actions = []Action{ActionRead, ActionCreate, ActionUpdate, ActionDelete, ActionSync, ActionManageMembers}

// Allows reports whether the role grants action project-wide (SPEC §13):
// owner: create, update, delete, sync; maintainer: create, update, sync;
// developer: sync; viewer: read. Every role reads; only owners manage members.
func (r Role) Allows(a Action) bool {
	switch r {
	case RoleOwner:
		return true
	case RoleMaintainer:
		return a == ActionRead || a == ActionCreate || a == ActionUpdate || a == ActionSync
	case RoleDeveloper:
		return a == ActionRead || a == ActionSync
	case RoleViewer:
		return a == ActionRead
	}
	return false
}

// Access is what one user has in one project and, optionally, one
// environment of it.
type Access struct {
	// Role is the user's project role, "" when not a member.
	Role Role
	// EnvLevel is the strongest environment permission that names the user
	// or one of the user's teams, "" when none does.
	EnvLevel EnvPermissionLevel
	// EnvRestricted is true when the environment lists any permission at
	// all: then only owners and the listed subjects may change or deploy to
	// it, and other members keep read access.
	EnvRestricted bool
}

// Allows decides one action. Environment permissions grant (a non-member or
// viewer with "deploy" may deploy to that environment) and narrow (a
// restricted environment refuses writes from members it does not list).
func (a Access) Allows(act Action) bool {
	if a.Role == RoleOwner {
		return true
	}
	switch a.EnvLevel {
	case EnvPermissionAdmin:
		if act != ActionManageMembers {
			return true
		}
	case EnvPermissionDeploy:
		if act == ActionRead || act == ActionSync {
			return true
		}
	case EnvPermissionRead:
		if act == ActionRead {
			return true
		}
	}
	if a.EnvRestricted {
		return a.Role != "" && act == ActionRead
	}
	return a.Role.Allows(act)
}

// StrongerEnvLevel returns the stronger of two environment levels.
func StrongerEnvLevel(a, b EnvPermissionLevel) EnvPermissionLevel {
	rank := map[EnvPermissionLevel]int{EnvPermissionRead: 1, EnvPermissionDeploy: 2, EnvPermissionAdmin: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
