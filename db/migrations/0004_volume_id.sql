-- Which data directory holds each row's file (storage/volume_id.hpp): the id
-- kept in PORTAL_DATA_DIR/volume-id. Start-up reconciliation deletes a row
-- whose file is missing only when the row records the volume that looked
-- (SPEC §9, §11), so an empty or wrong directory, or another machine's
-- volume on the same database, deletes nothing it does not hold.
--
-- Rows made before this migration record none (null): the first start on
-- the volume holding a row's file records that volume on it; until then the
-- row is never deleted for a missing file.
alter table uploads add column volume_id text;
alter table tus_uploads add column volume_id text;
