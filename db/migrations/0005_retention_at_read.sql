-- Retention follows the setting in force (SPEC §6, §9): an upload expires
-- PORTAL_RETENTION_DAYS after its created_at, computed when read, so turning
-- retention off shows expires_at null and keeps everything, turning it on
-- or shortening it reaches uploads made before, and no row is rewritten.
-- The expiry each row was stamped with at insert is dropped with its index.
alter table uploads drop column expires_at;
