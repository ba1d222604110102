-- Per-user storage quota (issue 4): bytes of stored archives a user may
-- hold. null = the server's default (PORTAL_USER_QUOTA_BYTES); 0 = none.
alter table users add column quota_bytes bigint;
alter table users add constraint users_quota_bytes_check check (quota_bytes is null or quota_bytes >= 0);
