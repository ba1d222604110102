-- Resumable uploads (tus 1.0.0, SPEC §5.2, issue 12): one row per partial
-- upload. The offset is not here: it is the size of the partial file
-- (PORTAL_DATA_DIR/partials/<id>.part) after an fsync (docs/TUS.md). The id
-- becomes the upload's id when it completes (in one transaction the row goes
-- and the uploads row comes).
--
-- 0001 reserved a tus_uploads table with an offset column, which this design
-- does not have (the offset is the fsynced file size, never a number that
-- could run ahead of the disk). No row can exist: POST /api/v1/tus/ answered
-- 404 until this migration. So the table is replaced.
drop table tus_uploads;

create table tus_uploads (
  id          text        primary key,
  owner_id    bigint      not null references users (id) on delete cascade,
  filename    text        not null,
  format      text        not null,
  length      bigint      not null,  -- Upload-Length: counts against the quota from creation
  metadata    text        not null,  -- Upload-Metadata as the client sent it
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  machine_id  text,                  -- FLY_MACHINE_ID of the machine holding the file
  constraint tus_uploads_id_format check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  constraint tus_uploads_format_check check (format in ('tar.gz', 'tar.zst')),
  constraint tus_uploads_length_check check (length >= 0)
);

create index tus_uploads_owner_idx on tus_uploads (owner_id);
create index tus_uploads_expires_idx on tus_uploads (expires_at);
