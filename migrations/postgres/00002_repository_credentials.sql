-- +goose Up
-- Push credentials of a repository, sealed (AES-GCM) by the service with
-- the key from FLUXGATE_CREDENTIAL_KEY; never returned by the API.
ALTER TABLE repositories ADD COLUMN push_credentials BYTEA;

-- +goose Down
ALTER TABLE repositories DROP COLUMN push_credentials;
