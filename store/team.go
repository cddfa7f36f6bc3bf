package store

import (
	"context"
	"time"

	"github.com/fluxgate/fluxgate"
)

const teamCols = `id, slug, name, created_at, updated_at, deleted_at`

func scanTeam(row scanner) (*fluxgate.Team, error) {
	var t fluxgate.Team
	err := row.Scan(&t.ID, &t.Slug, &t.Name, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}, nullTimeCol{&t.DeletedAt})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTeam stores t, filling in its ID (when empty) and timestamps.
// ECONFLICT if a live team has the same slug.
func (db *DB) CreateTeam(ctx context.Context, t *fluxgate.Team) error {
	if t.Slug == "" {
		return fluxgate.InvalidField("slug", "slug is required")
	}
	if t.ID == "" {
		t.ID = newID()
	}
	now := db.now()
	_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO teams (`+teamCols+`) VALUES (?, ?, ?, ?, ?, NULL)`),
		t.ID, t.Slug, t.Name, now, now)
	if err != nil {
		return dbError(err, "team "+t.Slug)
	}
	t.CreatedAt, t.UpdatedAt, t.DeletedAt = now, now, nil
	return nil
}

// GetTeam returns the live team with id; ENOTFOUND otherwise.
func (db *DB) GetTeam(ctx context.Context, id string) (*fluxgate.Team, error) {
	t, err := scanTeam(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+teamCols+` FROM teams WHERE id = ? AND deleted_at IS NULL`), id))
	if err != nil {
		return nil, dbError(err, "team "+id)
	}
	return t, nil
}

// ListTeams lists live teams by id (creation order), a page at a time.
func (db *DB) ListTeams(ctx context.Context, page fluxgate.Page) ([]*fluxgate.Team, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	teams, err := selectAll(ctx, db.r(ctx), db.q(`SELECT `+teamCols+` FROM teams
		WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?`), scanTeam, after, limit+1)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "teams")
	}
	teams, info := trimPage(teams, limit, func(t *fluxgate.Team) string { return t.ID })
	return teams, info, nil
}

// DeleteTeam soft-deletes the team at time at (now when zero), freeing its
// slug; ENOTFOUND if there is no live team with id.
func (db *DB) DeleteTeam(ctx context.Context, id string, at time.Time) error {
	at = db.at(at)
	return db.softDelete(ctx, "teams", "team", id, at)
}

// AddTeamMember adds m.UserID to m.TeamID. ENOTFOUND if the team is not live
// or the user does not exist; ECONFLICT if the user already belongs.
func (db *DB) AddTeamMember(ctx context.Context, m *fluxgate.TeamMember) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.requireLive(ctx, "teams", "team", m.TeamID); err != nil {
			return err
		}
		now := db.now()
		_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO team_members (team_id, user_id, created_at) VALUES (?, ?, ?)`),
			m.TeamID, m.UserID, now)
		if err != nil {
			return dbError(err, "member "+m.UserID+" of team "+m.TeamID)
		}
		m.CreatedAt = now
		return nil
	})
}

// RemoveTeamMember removes the user from the team; ENOTFOUND if the user was
// not a member.
func (db *DB) RemoveTeamMember(ctx context.Context, teamID, userID string) error {
	res, err := db.w(ctx).ExecContext(ctx, db.q(`DELETE FROM team_members WHERE team_id = ? AND user_id = ?`), teamID, userID)
	return affectedOne(res, err, "member "+userID+" of team "+teamID)
}

// ListTeamMembers lists the members of a live team in the order they joined
// (empty for a missing or deleted team).
func (db *DB) ListTeamMembers(ctx context.Context, teamID string) ([]*fluxgate.TeamMember, error) {
	members, err := selectAll(ctx, db.r(ctx), db.q(`SELECT m.team_id, m.user_id, m.created_at
		FROM team_members m JOIN teams t ON t.id = m.team_id AND t.deleted_at IS NULL
		WHERE m.team_id = ? ORDER BY m.created_at, m.user_id`),
		func(row scanner) (*fluxgate.TeamMember, error) {
			var m fluxgate.TeamMember
			if err := row.Scan(&m.TeamID, &m.UserID, timeCol{&m.CreatedAt}); err != nil {
				return nil, err
			}
			return &m, nil
		}, teamID)
	if err != nil {
		return nil, dbError(err, "team members")
	}
	return members, nil
}

// TeamIDsForUser lists the ids of the live teams the user belongs to, in id
// order.
func (db *DB) TeamIDsForUser(ctx context.Context, userID string) ([]string, error) {
	rows, err := db.r(ctx).QueryxContext(ctx, db.q(`SELECT t.id FROM team_members m
		JOIN teams t ON t.id = m.team_id AND t.deleted_at IS NULL
		WHERE m.user_id = ? ORDER BY t.id`), userID)
	if err != nil {
		return nil, dbError(err, "teams of user "+userID)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbError(err, "teams of user "+userID)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "teams of user "+userID)
	}
	return ids, nil
}
