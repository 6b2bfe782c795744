-- Accounts, sessions, stored server credentials, alert acknowledgement and the audit trail of
-- the gateway.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Normalised: trimmed and lower-cased, so one address is one account.
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens are opaque random strings; only their SHA-256 is stored. Every refresh
-- rotates the token within its family; presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- A server's credentials: a JSON object sealed with AES-256-GCM (the server id as associated
-- data), never returned by list or detail responses.
ALTER TABLE servers ADD COLUMN credentials bytea;
ALTER TABLE servers
    ADD CONSTRAINT servers_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE SET NULL;

ALTER TABLE alerts
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by uuid REFERENCES users (id) ON DELETE SET NULL;

-- Who did what: failed logins, servers created or deleted, credentials read, …
CREATE TABLE audit_log (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  uuid,
    action text NOT NULL,
    target text,
    ip     text,
    detail jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
