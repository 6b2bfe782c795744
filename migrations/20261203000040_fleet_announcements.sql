-- Live fleet subscriptions announce servers that appear and servers whose name, host name or
-- tags change, at once rather than at their next periodic re-check: a new server, or a changed
-- description, notifies `flick_access` with {"server": id} as a deletion or a new owner already
-- does (the gateway re-checks the connections that may see it). A WHEN clause keeps an UPDATE
-- that leaves them as they were (the persister's last-seen writes) silent.
CREATE FUNCTION flick_notify_server_listed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flick_access', json_build_object('server', NEW.id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER servers_listed
    AFTER INSERT ON servers
    FOR EACH ROW EXECUTE FUNCTION flick_notify_server_listed();

CREATE TRIGGER servers_described
    AFTER UPDATE OF name, hostname, tags ON servers
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name
          OR OLD.hostname IS DISTINCT FROM NEW.hostname
          OR OLD.tags IS DISTINCT FROM NEW.tags)
    EXECUTE FUNCTION flick_notify_server_listed();
