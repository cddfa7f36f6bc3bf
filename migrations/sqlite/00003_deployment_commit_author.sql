-- +goose Up
-- The author of a deployment's commit as Git records it: for pushes made
-- outside fluxgate (gitops-git) the only "who" there is.
ALTER TABLE deployments ADD COLUMN commit_author_name TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN commit_author_email TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deployments DROP COLUMN commit_author_email;
ALTER TABLE deployments DROP COLUMN commit_author_name;
