package fluxgate_test

import (
	"testing"

	"github.com/fluxgate/fluxgate"
)

func TestAccessAllows(t *testing.T) {
	const (
		r  = fluxgate.ActionRead
		c  = fluxgate.ActionCreate
		u  = fluxgate.ActionUpdate
		d  = fluxgate.ActionDelete
		s  = fluxgate.ActionSync
		mm = fluxgate.ActionManageMembers
	)
	tests := []struct {
		name   string
		access fluxgate.Access
		allow  []fluxgate.Action
	}{
		{"owner", fluxgate.Access{Role: fluxgate.RoleOwner}, []fluxgate.Action{r, c, u, d, s, mm}},
		{"maintainer", fluxgate.Access{Role: fluxgate.RoleMaintainer}, []fluxgate.Action{r, c, u, s}},
		{"developer", fluxgate.Access{Role: fluxgate.RoleDeveloper}, []fluxgate.Action{r, s}},
		{"viewer", fluxgate.Access{Role: fluxgate.RoleViewer}, []fluxgate.Action{r}},
		{"non-member", fluxgate.Access{}, nil},
		{"owner on restricted env", fluxgate.Access{Role: fluxgate.RoleOwner, EnvRestricted: true}, []fluxgate.Action{r, c, u, d, s, mm}},
		{"maintainer not listed on restricted env", fluxgate.Access{Role: fluxgate.RoleMaintainer, EnvRestricted: true}, []fluxgate.Action{r}},
		{"developer listed deploy", fluxgate.Access{Role: fluxgate.RoleDeveloper, EnvLevel: fluxgate.EnvPermissionDeploy, EnvRestricted: true}, []fluxgate.Action{r, s}},
		{"viewer granted deploy", fluxgate.Access{Role: fluxgate.RoleViewer, EnvLevel: fluxgate.EnvPermissionDeploy, EnvRestricted: true}, []fluxgate.Action{r, s}},
		{"viewer granted admin", fluxgate.Access{Role: fluxgate.RoleViewer, EnvLevel: fluxgate.EnvPermissionAdmin, EnvRestricted: true}, []fluxgate.Action{r, c, u, d, s}},
		{"outsider granted read", fluxgate.Access{EnvLevel: fluxgate.EnvPermissionRead, EnvRestricted: true}, []fluxgate.Action{r}},
		{"outsider not listed on restricted env", fluxgate.Access{EnvRestricted: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[fluxgate.Action]bool{}
			for _, a := range tt.allow {
				want[a] = true
			}
			for _, a := range fluxgate.Actions {
				if got := tt.access.Allows(a); got != want[a] {
					t.Errorf("%+v.Allows(%s) = %v, want %v", tt.access, a, got, want[a])
				}
			}
		})
	}
}
