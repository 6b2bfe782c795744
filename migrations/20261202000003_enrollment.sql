-- Enrolling hosts: a signed-in user creates a short-lived token; a host presents it with the
-- public half of a key pair it generated itself and receives its own NATS identity (a user JWT
-- for that key, allowed only its own subjects) and a server id, owned by the token's creator.

-- Only the SHA-256 of a token is stored.
CREATE TABLE enrollment_tokens (
    id         uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text,
    tags       text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    uses_left  integer NOT NULL CHECK (uses_left >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrollment_tokens_owner_idx ON enrollment_tokens (owner_id);

-- Each enrolment: a host's public nkey and the server it reports as. A revoked one is cut off
-- at once: the gateway pushes the FLICK account's JWT with the key in its revocations (every
-- JWT of the key issued up to the revocation). A host enrolled again with the same key while
-- still enrolled keeps its server; after a revocation it gets a new enrolment and server.
CREATE TABLE host_keys (
    id          uuid PRIMARY KEY,
    public_key  text NOT NULL,
    server_id   text COLLATE "C" NOT NULL,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX host_keys_key_idx ON host_keys (public_key);
CREATE INDEX host_keys_server_idx ON host_keys (server_id);

-- How a server came to be: `registered` by a user (POST /servers), `enrolled` by a host with
-- a token, or `discovered` (samples arrived from a service identity or an integration).
ALTER TABLE servers ADD COLUMN origin text NOT NULL DEFAULT 'discovered'
    CHECK (origin IN ('registered', 'enrolled', 'discovered'));
UPDATE servers SET origin = 'registered' WHERE owner_id IS NOT NULL;
