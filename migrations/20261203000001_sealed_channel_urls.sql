-- A channel URL that is itself a credential (a Slack or Discord incoming webhook; any URL with
-- a password or a query string) is sealed with the channels' other secrets. `url` then holds
-- the form shown to operators, with the credential cut out; the alerter calls `url_sealed`.
-- Rows written before this migration are sealed by the gateway at its next start (it holds
-- the key; SQL does not).
ALTER TABLE notification_channels ADD COLUMN url_sealed bytea;
