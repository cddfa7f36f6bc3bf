package fluxgate

import "time"

// User is a person known to fluxgate. Users are created on first sight of a
// valid token (Subject is the token's "sub" claim).
type User struct {
	ID        string    `json:"id" db:"id"`
	Subject   string    `json:"subject" db:"subject"`
	Name      string    `json:"name" db:"name"`
	Email     string    `json:"email" db:"email"`
	AvatarURL string    `json:"avatarUrl" db:"avatar_url"`
	CreatedAt time.Time `json:"createdAt" db:"created_at"`
	UpdatedAt time.Time `json:"updatedAt" db:"updated_at"`
}

// Team groups users so that environment permissions can name many at once.
type Team struct {
	ID        string     `json:"id" db:"id"`
	Slug      string     `json:"slug" db:"slug"`
	Name      string     `json:"name" db:"name"`
	CreatedAt time.Time  `json:"createdAt" db:"created_at"`
	UpdatedAt time.Time  `json:"updatedAt" db:"updated_at"`
	DeletedAt *time.Time `json:"deletedAt,omitempty" db:"deleted_at"`
}

// TeamMember ties a user to a team.
type TeamMember struct {
	TeamID    string    `json:"teamId" db:"team_id"`
	UserID    string    `json:"userId" db:"user_id"`
	CreatedAt time.Time `json:"createdAt" db:"created_at"`
}
