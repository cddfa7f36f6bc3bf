package store

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/fluxgate/fluxgate"
)

const userCols = `id, subject, name, email, avatar_url, created_at, updated_at`

func scanUser(row scanner) (*fluxgate.User, error) {
	var u fluxgate.User
	err := row.Scan(&u.ID, &u.Subject, &u.Name, &u.Email, &u.AvatarURL,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// UpsertUser creates the user with u.Subject, or updates its name, email and
// avatar URL. u.ID, CreatedAt and UpdatedAt are filled in from the stored
// row. EINVALID without a subject.
func (db *DB) UpsertUser(ctx context.Context, u *fluxgate.User) error {
	if u.Subject == "" {
		return fluxgate.InvalidField("subject", "subject is required")
	}
	id := u.ID
	if id == "" {
		id = newID()
	}
	now := db.now()
	row := db.w(ctx).QueryRowxContext(ctx, db.q(`
		INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET
			name = excluded.name, email = excluded.email,
			avatar_url = excluded.avatar_url, updated_at = excluded.updated_at
		RETURNING `+userCols),
		id, u.Subject, u.Name, u.Email, u.AvatarURL, now, now)
	got, err := scanUser(row)
	if err != nil {
		return dbError(err, "user "+u.Subject)
	}
	*u = *got
	return nil
}

// GetUser returns the user with id; ENOTFOUND if there is none.
func (db *DB) GetUser(ctx context.Context, id string) (*fluxgate.User, error) {
	u, err := scanUser(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+userCols+` FROM users WHERE id = ?`), id))
	if err != nil {
		return nil, dbError(err, "user "+id)
	}
	return u, nil
}

// GetUserBySubject returns the user with the token subject; ENOTFOUND if
// there is none.
func (db *DB) GetUserBySubject(ctx context.Context, subject string) (*fluxgate.User, error) {
	u, err := scanUser(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+userCols+` FROM users WHERE subject = ?`), subject))
	if err != nil {
		return nil, dbError(err, "user with subject "+subject)
	}
	return u, nil
}

// GetUsers returns the users with ids in the order of ids (a dataloader
// batch); a missing user is a nil entry, a repeated id repeats the user.
func (db *DB) GetUsers(ctx context.Context, ids []string) ([]*fluxgate.User, error) {
	out := make([]*fluxgate.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query, args, err := sqlx.In(`SELECT `+userCols+` FROM users WHERE id IN (?)`, ids)
	if err != nil {
		return nil, err
	}
	users, err := selectAll(ctx, db.r(ctx), db.q(query), scanUser, args...)
	if err != nil {
		return nil, dbError(err, "users")
	}
	byID := make(map[string]*fluxgate.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}
