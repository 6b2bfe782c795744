-- API tokens (issue 20): long-lived, named, scoped credentials for scrapers, scripts and CI,
-- so they need neither a password nor a browser session. A token reads `flk_<id>_<secret>`:
-- the id finds the row, only the secret's SHA-256 is stored (a database leak yields no usable
-- token), and a token acts with its owner's current role and ownership, never more.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- What the token may do; the gateway maps each route to the scope it needs.
    scopes       text[] NOT NULL CHECK (
        cardinality(scopes) BETWEEN 1 AND 4
        AND scopes <@ ARRAY['read', 'write', 'write:logs', 'metrics:scrape']::text[]),
    secret_hash  bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    -- Written at most once a minute per token, not on every request.
    last_used_at timestamptz,
    last_used_ip text,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC);
-- One name per live token of a user, so a list of tokens can be read by name.
CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (user_id, name) WHERE revoked_at IS NULL;

-- Revoking a token (or deleting it by hand) reaches every gateway at once through
-- `flick_access`, as the end of a session does: {"user": owner, "token": id} (the owner, so that
-- live connections opened with the token re-check). Recording the last use is not a change of
-- access and notifies nobody.
CREATE OR REPLACE FUNCTION flick_notify_access() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('flick_access', json_build_object('user', OLD.id)::text);
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('flick_access',
                          json_build_object('user', NEW.user_id, 'session', NEW.id)::text);
    ELSIF TG_TABLE_NAME = 'api_tokens' THEN
        PERFORM pg_notify('flick_access',
                          json_build_object('user', OLD.user_id, 'token', OLD.id)::text);
    ELSE
        PERFORM pg_notify('flick_access', json_build_object('server', OLD.id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_access_changed
    AFTER UPDATE OF revoked_at, expires_at, scopes OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION flick_notify_access();
