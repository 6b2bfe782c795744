-- Sessions that can be ended at once: every access token names its session, and the gateway
-- checks (cached for at most a few seconds) that the session is open and the account exists and
-- is enabled, reading the role from here rather than from the token. Logout, a reused refresh
-- token, deleting or disabling an account and changing its role thus take effect within seconds,
-- not when the 15-minute token expires.

ALTER TABLE users ADD COLUMN disabled_at timestamptz;

CREATE TABLE sessions (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    -- "Keep me signed in": the refresh cookie outlives the browser session.
    persistent boolean NOT NULL DEFAULT true
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- A refresh token family was a session: keep the sessions already open.
INSERT INTO sessions (id, user_id, created_at, revoked_at)
SELECT family_id, (array_agg(user_id))[1], min(created_at),
       CASE WHEN bool_and(revoked_at IS NOT NULL) THEN max(revoked_at) END
FROM refresh_tokens
GROUP BY family_id;

ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_session_fk FOREIGN KEY (family_id) REFERENCES sessions (id) ON DELETE CASCADE;

-- Every gateway listens on `flick_access` and forgets what it cached about an account or a
-- session the moment it changes, also when the change is made by hand in the database (an
-- admin demoted with UPDATE). The payload is JSON: {"user": …} or {"user": …, "session": …},
-- or {"server": …} when a server is deleted or changes owner (live subscriptions re-check).
CREATE FUNCTION flick_notify_access() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('flick_access', json_build_object('user', OLD.id)::text);
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('flick_access',
                          json_build_object('user', NEW.user_id, 'session', NEW.id)::text);
    ELSE
        PERFORM pg_notify('flick_access', json_build_object('server', OLD.id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_access_changed
    AFTER UPDATE OF role, disabled_at OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION flick_notify_access();

CREATE TRIGGER sessions_revoked
    AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
    EXECUTE FUNCTION flick_notify_access();

CREATE TRIGGER servers_access_changed
    AFTER UPDATE OF owner_id OR DELETE ON servers
    FOR EACH ROW EXECUTE FUNCTION flick_notify_access();
