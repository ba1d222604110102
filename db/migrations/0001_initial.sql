-- 0001_initial: the whole schema the contract needs (SPEC §4–§9), including
-- tables whose code comes later.
--
-- Rules for every migration:
--   * no BEGIN/COMMIT: `upload-portal migrate` runs each file in its own
--     transaction and records it in schema_migrations in that transaction;
--   * never edit a migration once applied anywhere: migrate refuses to run
--     when an applied file's checksum changed; add a new NNNN_*.sql instead;
--   * no session-level state (SET, temporary tables, prepared statements,
--     advisory locks) is relied on by the application: DATABASE_URL may point
--     at PgBouncer in transaction mode.
--
-- Names (users, upload ids, filenames) are validated by the application; the
-- CHECKs below repeat the rules so a bug or a hand-written row cannot store
-- something the rest of the system would trust blindly.

-- Accounts (SPEC §2 `user add|list|disable`, §4 roles).
create table users (
  id            bigserial   primary key,
  username      text        not null,
  role          text        not null default 'uploader',
  -- Argon2id encoded string (crypto_pwhash_str); null = cannot log in with a
  -- password (token-only account).
  password_hash text,
  -- Set by `user disable`: sessions and tokens of a disabled user stop
  -- working at once (every lookup checks this column).
  disabled_at   timestamptz,
  created_at    timestamptz not null default now(),
  constraint users_username_key unique (username),
  constraint users_username_format check (username ~ '^[A-Za-z0-9._-]{1,64}$'),
  constraint users_role_check check (role in ('admin', 'uploader')),
  constraint users_password_hash_check check (password_hash is null or password_hash like '$argon2id$%')
);
-- Stored as given, but "Alice" and "alice" may not both exist: two accounts
-- differing only in case invite impersonation in audit logs and listings.
create unique index users_username_lower_key on users (lower(username));

-- API tokens "upt_<id>_<secret>" (SPEC §4): the id is public and is the key;
-- only the SHA-256 of the secret is stored.
create table api_tokens (
  id           text        primary key,
  user_id      bigint      not null references users (id) on delete cascade,
  name         text        not null default '',
  secret_hash  text        not null,
  created_at   timestamptz not null default now(),
  expires_at   timestamptz,           -- null = never
  revoked_at   timestamptz,           -- set by `token revoke`
  last_used_at timestamptz,
  constraint api_tokens_id_format check (id ~ '^[A-Za-z0-9_-]{16}$'),
  constraint api_tokens_name_length check (length(name) <= 200),
  constraint api_tokens_secret_hash_format check (secret_hash ~ '^[0-9a-f]{64}$'),
  constraint api_tokens_expiry_check check (expires_at is null or expires_at > created_at)
);
create index api_tokens_user_idx on api_tokens (user_id);

-- Browser sessions (SPEC §4): the cookie carries a random id, the table only
-- a hash of it, so a database leak does not hand out live sessions.
create table sessions (
  id_hash             text        primary key,
  user_id             bigint      not null references users (id) on delete cascade,
  csrf_token          text        not null,
  created_at          timestamptz not null default now(),
  last_seen_at        timestamptz not null default now(),
  idle_expires_at     timestamptz not null,  -- pushed forward on use
  absolute_expires_at timestamptz not null,  -- never moves
  ip                  text,
  user_agent          text,
  constraint sessions_id_hash_nonempty check (id_hash <> ''),
  constraint sessions_csrf_nonempty check (csrf_token <> ''),
  constraint sessions_expiry_check check (
    idle_expires_at > created_at and absolute_expires_at > created_at)
);
create index sessions_user_idx on sessions (user_id);
create index sessions_absolute_expiry_idx on sessions (absolute_expires_at);

-- Failed logins for the lockout rule (SPEC §4, §11: 5 failures within 15 min
-- lock the name for 15 min). Keyed by the name as typed, not by user id:
-- unknown names must lock exactly like known ones. Rows older than the window
-- are useless and may be deleted by the reaper.
create table login_failures (
  id       bigserial   primary key,
  username text        not null,
  at       timestamptz not null default now(),
  ip       text,
  constraint login_failures_username_length check (length(username) <= 256)
);
create index login_failures_username_at_idx on login_failures (username, at desc);
create index login_failures_at_idx on login_failures (at);

-- Completed, validated archives (SPEC §5, §6). A row exists only once the
-- file is fsynced and renamed into place (SPEC §5.1).
create table uploads (
  id                text        primary key,
  owner_id          bigint      not null references users (id) on delete restrict,
  filename          text        not null,
  size              bigint      not null,
  sha256            text        not null,
  format            text        not null,
  entries           bigint      not null,
  uncompressed_size bigint      not null,
  created_at        timestamptz not null default now(),
  expires_at        timestamptz,  -- null unless retention is on (SPEC §11)
  constraint uploads_id_format check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  -- SPEC §5.3: plain name, [A-Za-z0-9._-], at most 255, no leading dot.
  -- Suffixes compared case-insensitively: whether "X.TAR.GZ" is accepted is
  -- the upload code's decision, not something to fail on at commit time.
  constraint uploads_filename_format check (
    filename ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$'
    and filename ~* '\.(tar\.gz|tgz|tar\.zst)$'),
  constraint uploads_format_check check (format in ('tar.gz', 'tar.zst')),
  constraint uploads_format_matches_name check (
    (format = 'tar.zst') = (lower(filename) like '%.tar.zst')),
  constraint uploads_size_check check (size >= 0),
  constraint uploads_sha256_format check (sha256 ~ '^[0-9a-f]{64}$'),
  constraint uploads_entries_check check (entries >= 0),
  constraint uploads_uncompressed_size_check check (uncompressed_size >= 0)
);
-- Cursor pagination, newest first: WHERE (created_at, id) < ($cursor) ORDER BY
-- created_at DESC, id DESC; per owner for uploaders, global for admins.
create index uploads_owner_created_idx on uploads (owner_id, created_at desc, id desc);
create index uploads_created_idx on uploads (created_at desc, id desc);
create index uploads_expires_idx on uploads (expires_at) where expires_at is not null;

-- Partial resumable uploads (tus, SPEC §5.2). The id becomes the upload id
-- when the last byte is accepted; the row is then deleted in the same
-- transaction that inserts into uploads.
create table tus_uploads (
  id            text        primary key,
  owner_id      bigint      not null references users (id) on delete cascade,
  filename      text        not null,
  -- The Upload-Metadata header as received, echoed back on HEAD.
  metadata      text        not null default '',
  upload_length bigint      not null,
  -- Only bytes that are fsynced on the volume: a restarted server reports
  -- this offset and never one it might have lost.
  offset_bytes  bigint      not null default 0,
  -- FLY_MACHINE_ID of the machine whose volume holds the partial file
  -- ('' when not on Fly); other machines answer with fly-replay.
  instance_id   text        not null default '',
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  expires_at    timestamptz not null,  -- Upload-Expires
  constraint tus_uploads_id_format check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  constraint tus_uploads_filename_format check (
    filename ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$'),
  constraint tus_uploads_length_check check (upload_length >= 0),
  constraint tus_uploads_offset_check check (
    offset_bytes >= 0 and offset_bytes <= upload_length)
);
create index tus_uploads_owner_idx on tus_uploads (owner_id);
create index tus_uploads_expires_idx on tus_uploads (expires_at);
create index tus_uploads_instance_idx on tus_uploads (instance_id);

-- Audit log (SPEC §7 /admin/audit): logins, token create/revoke, user
-- changes, uploads, deletes, actor kills. `username` is who acted ('cli' for
-- the command line), kept even if the account is gone; `detail` holds the
-- subject (e.g. {"user": "alice", "token_id": "..."}).
create table audit_events (
  id         bigserial   primary key,
  time       timestamptz not null default now(),
  event      text        not null,
  user_id    bigint      references users (id) on delete set null,
  username   text,
  ip         text,
  request_id text,
  detail     jsonb       not null default '{}'::jsonb,
  constraint audit_events_event_format check (event ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  constraint audit_events_detail_object check (jsonb_typeof(detail) = 'object')
);
create index audit_events_time_idx on audit_events (time desc, id desc);
