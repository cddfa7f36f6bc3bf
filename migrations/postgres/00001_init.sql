-- +goose Up
-- Identifiers are TEXT with the "C" collation so that keyset pagination by id
-- orders bytewise, the same as Go's string comparison, whatever the
-- database's default collation is. Timestamps are TIMESTAMPTZ, stored UTC.

CREATE TABLE users (
    id          TEXT COLLATE "C" PRIMARY KEY,
    subject     TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    avatar_url  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_subject_key ON users (subject);

CREATE TABLE teams (
    id          TEXT COLLATE "C" PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX teams_slug_key ON teams (slug) WHERE deleted_at IS NULL;

CREATE TABLE team_members (
    team_id     TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

CREATE TABLE projects (
    id               TEXT COLLATE "C" PRIMARY KEY,
    slug             TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    namespace        TEXT NOT NULL DEFAULT '',
    gitops_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    deployment_mode  TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE UNIQUE INDEX projects_slug_key ON projects (slug) WHERE deleted_at IS NULL;

CREATE TABLE project_members (
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'maintainer', 'developer', 'viewer')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);

CREATE TABLE environments (
    id             TEXT COLLATE "C" PRIMARY KEY,
    project_id     TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    name           TEXT NOT NULL,
    type           TEXT NOT NULL DEFAULT '',
    gitops         JSONB NOT NULL DEFAULT '{}',
    approval       JSONB NOT NULL DEFAULT '{}',
    health_checks  JSONB NOT NULL DEFAULT '[]',
    permissions    JSONB NOT NULL DEFAULT '[]',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX environments_project_name_key ON environments (project_id, name) WHERE deleted_at IS NULL;

CREATE TABLE repositories (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    project_id         TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    provider           TEXT NOT NULL DEFAULT '',
    full_name          TEXT NOT NULL,
    clone_url          TEXT NOT NULL DEFAULT '',
    default_branch     TEXT NOT NULL DEFAULT '',
    gitops             JSONB NOT NULL DEFAULT '{}',
    flux_sync_status   TEXT NOT NULL DEFAULT '',
    flux_last_commit   TEXT NOT NULL DEFAULT '',
    flux_last_sync_at  TIMESTAMPTZ,
    flux_sync_error    TEXT NOT NULL DEFAULT '',
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    deleted_at         TIMESTAMPTZ
);
CREATE UNIQUE INDEX repositories_project_full_name_key ON repositories (project_id, full_name) WHERE deleted_at IS NULL;

CREATE TABLE gitops_resources (
    id                       TEXT COLLATE "C" PRIMARY KEY,
    project_id               TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    environment_id           TEXT COLLATE "C" REFERENCES environments (id),
    repository_id            TEXT COLLATE "C" REFERENCES repositories (id),
    kind                     TEXT NOT NULL,
    name                     TEXT NOT NULL,
    namespace                TEXT NOT NULL DEFAULT '',
    spec                     JSONB NOT NULL DEFAULT '{}',
    status                   TEXT NOT NULL DEFAULT 'pending',
    suspended                BOOLEAN NOT NULL DEFAULT FALSE,
    conditions               JSONB NOT NULL DEFAULT '[]',
    inventory                JSONB NOT NULL DEFAULT '[]',
    last_applied_revision    TEXT NOT NULL DEFAULT '',
    last_attempted_revision  TEXT NOT NULL DEFAULT '',
    error_message            TEXT NOT NULL DEFAULT '',
    observed_generation      BIGINT NOT NULL DEFAULT 0,
    last_reconciled_at       TIMESTAMPTZ,
    created_by               TEXT NOT NULL DEFAULT '',
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    deleted_at               TIMESTAMPTZ
);
CREATE UNIQUE INDEX gitops_resources_name_key
    ON gitops_resources (project_id, COALESCE(environment_id, ''), kind, name) WHERE deleted_at IS NULL;
CREATE INDEX gitops_resources_object_idx ON gitops_resources (kind, namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX gitops_resources_environment_idx ON gitops_resources (environment_id);

CREATE TABLE deployments (
    id              TEXT COLLATE "C" PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    environment_id  TEXT COLLATE "C" NOT NULL REFERENCES environments (id),
    resource_id     TEXT COLLATE "C" REFERENCES gitops_resources (id),
    version         TEXT NOT NULL DEFAULT '',
    commit_sha      TEXT NOT NULL DEFAULT '',
    branch          TEXT NOT NULL DEFAULT '',
    strategy        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    method          TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    deployed_by     TEXT NOT NULL DEFAULT '',
    change          JSONB NOT NULL DEFAULT 'null',
    steps           JSONB NOT NULL DEFAULT '[]',
    rollback_of     TEXT COLLATE "C" REFERENCES deployments (id),
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_project_env_idx ON deployments (project_id, environment_id, created_at, id);
CREATE INDEX deployments_env_commit_idx ON deployments (environment_id, commit_sha);
-- Newest-first listings (keyset by id) per project and per environment.
CREATE INDEX deployments_project_id_idx ON deployments (project_id, id);
CREATE INDEX deployments_env_id_idx ON deployments (environment_id, id);
CREATE INDEX deployments_status_idx ON deployments (status);

CREATE TABLE approvals (
    id             TEXT COLLATE "C" PRIMARY KEY,
    deployment_id  TEXT COLLATE "C" NOT NULL REFERENCES deployments (id),
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    decision       TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    comment        TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX approvals_deployment_user_key ON approvals (deployment_id, user_id);

CREATE TABLE audit_logs (
    id           TEXT COLLATE "C" PRIMARY KEY,
    project_id   TEXT COLLATE "C" REFERENCES projects (id),
    actor_id     TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL DEFAULT '',
    target_id    TEXT NOT NULL DEFAULT '',
    metadata     JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_logs_project_idx ON audit_logs (project_id, id);

CREATE TABLE flux_events (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT COLLATE "C" NOT NULL,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    resource_id  TEXT COLLATE "C" REFERENCES gitops_resources (id),
    kind         TEXT NOT NULL DEFAULT '',
    name         TEXT NOT NULL DEFAULT '',
    namespace    TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    type         TEXT NOT NULL DEFAULT '',
    severity     TEXT NOT NULL DEFAULT '',
    revision     TEXT NOT NULL DEFAULT '',
    metadata     JSONB NOT NULL DEFAULT '{}',
    source       TEXT NOT NULL DEFAULT '',
    dedup_key    TEXT NOT NULL DEFAULT '',
    timestamp    TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX flux_events_id_key ON flux_events (id);
CREATE UNIQUE INDEX flux_events_dedup_key ON flux_events (dedup_key) WHERE dedup_key <> '';
CREATE INDEX flux_events_project_seq_idx ON flux_events (project_id, seq);

-- +goose Down
DROP TABLE flux_events;
DROP TABLE audit_logs;
DROP TABLE approvals;
DROP TABLE deployments;
DROP TABLE gitops_resources;
DROP TABLE repositories;
DROP TABLE environments;
DROP TABLE project_members;
DROP TABLE projects;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE users;
