-- A refresh whose answer was lost (the page reloaded while it was in flight) can be retried:
-- the hash of the attempt id the client sent with the refresh that used a token.
ALTER TABLE refresh_tokens ADD COLUMN used_by_attempt bytea;
