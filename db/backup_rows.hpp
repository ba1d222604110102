// The database side of `backup` and `restore` (SPEC §2, §11): which tables a
// backup holds, reading them from one consistent snapshot, and loading them
// into a target database.
//
// Rows travel as JSON Lines, one `to_jsonb(row)` object per line: every
// column by name, in PostgreSQL's own text forms (timestamps with offset and
// microseconds, bigint exact, jsonb as JSON), loaded back with
// jsonb_populate_recordset into a table of the same schema version.
#pragma once

#include <boost/json/object.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace portal::db {

// Tables a backup holds, in the order a restore loads them (referenced before
// referencing): users, api_tokens, uploads, audit_events.
const std::vector<std::string>& backup_tables();

// Tables a backup leaves out on purpose, each for a reason:
//   sessions         live browser credentials: after a restore, people sign in again
//   login_failures   lockout counters that expire within 15 minutes
//   tus_uploads      partial uploads, whose bytes (tmp/) are not backed up:
//                    clients start them again
//   schema_migrations  recreated by `migrate`; the version is in the backup
// A table in neither list makes `backup` refuse, so a migration adding one
// cannot be forgotten here.
const std::vector<std::string>& tables_left_out();

// One uploads row, with the columns the archive files are checked against.
struct snapshot_upload {
  std::string id;
  uint64_t size = 0;
  std::string sha256;
  std::string row_json; // to_jsonb(row)
};

// A REPEATABLE READ, READ ONLY transaction: every read below sees the
// database as it was at the first one, while uploads go on. Use
// DATABASE_DIRECT_URL when set: a transaction-mode pooler would be fine for
// one transaction, but a long backup should not hold a pooled server
// connection. Throws pqxx errors.
class backup_snapshot {
public:
  explicit backup_snapshot(const std::string& conninfo);
  ~backup_snapshot();
  backup_snapshot(const backup_snapshot&) = delete;
  backup_snapshot& operator=(const backup_snapshot&) = delete;

  // The highest applied migration (0 when none).
  int schema_version();

  // Public tables in neither backup_tables() nor tables_left_out().
  std::vector<std::string> unknown_tables();

  struct totals {
    uint64_t uploads = 0;
    uint64_t upload_bytes = 0;
  };
  totals upload_totals();

  // Every uploads row, ordered by id, fetched in batches (bounded memory).
  void for_each_upload(const std::function<void(const snapshot_upload&)>& visit);

  // Every row of `table` (one of backup_tables(), not "uploads") as JSON,
  // in primary-key order, fetched in batches.
  void for_each_row(const std::string& table, const std::function<void(std::string_view)>& visit);

  // Ends the read-only transaction.
  void finish();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// What a restore finds in its target before touching it.
struct target_state {
  int schema_version = 0; // 0: never migrated
  uint64_t users = 0;
  uint64_t uploads = 0;
  bool empty() const { return users == 0 && uploads == 0; }
};
target_state inspect_target(const std::string& conninfo);

// Of `ids`, those whose uploads row exists now (outside any snapshot).
std::set<std::string> live_upload_ids(const std::string& conninfo,
                                      const std::vector<std::string>& ids);

// Loads rows into the target in one transaction: nothing is visible until
// commit(), and nothing stays if it is not reached.
class restore_loader {
public:
  explicit restore_loader(const std::string& conninfo);
  ~restore_loader();
  restore_loader(const restore_loader&) = delete;
  restore_loader& operator=(const restore_loader&) = delete;

  // Call once, before load(). With `wipe` (--force): empties every
  // application table (left-out ones too: their rows would point at users
  // that are about to be replaced). Without: the target's own audit events
  // (an empty instance still records failed logins) are kept and renumbered
  // after the restored ones at commit(), so the backup's ids stay as they were.
  void prepare(bool wipe);

  // JSON Lines of `table` (backup_tables()), inserted in batches. Throws
  // std::runtime_error naming the table and line for a line that is not a
  // JSON object, pqxx errors for a row the schema refuses.
  void load(const std::string& table, const std::function<bool(std::string&)>& next_line);

  // Rows inserted into `table` so far.
  uint64_t loaded(const std::string& table) const;

  // Moves the id sequences past the restored ids, records a `backup.restored`
  // audit event with `detail`, commits.
  void commit(const boost::json::object& detail);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Records a `backup.created` audit event in its own transaction.
void record_backup_created(const std::string& conninfo, const boost::json::object& detail);

} // namespace portal::db
