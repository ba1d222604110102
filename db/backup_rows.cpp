#include "db/backup_rows.hpp"

#include "db/audit.hpp"
#include "db/query.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace portal::db {

namespace {

// One SQL statement and the name it is known by in errors and logs.
struct statement {
  std::string_view name;
  std::string_view sql;
};

// The statements for one backed-up table. `read` yields one column, `row`;
// `insert` takes $1, a JSON array of such rows; `sequence` (may be empty)
// moves the table's serial past the restored ids.
struct table_statements {
  std::string_view table;
  statement read;
  statement insert;
  statement sequence;
};

// In load order: a row's references are loaded before it.
constexpr table_statements tables[] = {
  {"users",
   {"backup.read_users", "SELECT to_jsonb(t)::text AS row FROM users t ORDER BY id"},
   {"restore.insert_users",
    "INSERT INTO users SELECT * FROM jsonb_populate_recordset(NULL::users, $1::jsonb)"},
   {"restore.sequence_users",
    "SELECT setval(pg_get_serial_sequence('users', 'id'), coalesce(max(id), 0) + 1, false)"
    " FROM users"}},
  {"api_tokens",
   {"backup.read_api_tokens", "SELECT to_jsonb(t)::text AS row FROM api_tokens t ORDER BY id"},
   {"restore.insert_api_tokens",
    "INSERT INTO api_tokens SELECT * FROM jsonb_populate_recordset(NULL::api_tokens, $1::jsonb)"},
   {"", ""}},
  // A volume id names a disk of the deployment that made the backup, not
  // data: restored rows record none, whichever release made the backup, and
  // the first start on the volume holding their files records it there
  // (storage/volume_id.hpp).
  {"uploads",
   {"backup.read_uploads",
    "SELECT id, size, sha256, to_jsonb(t)::text AS row FROM uploads t ORDER BY id"},
   {"restore.insert_uploads",
    "INSERT INTO uploads SELECT * FROM jsonb_populate_recordset(NULL::uploads,"
    " (SELECT jsonb_agg(r - 'volume_id') FROM jsonb_array_elements($1::jsonb) r))"},
   {"", ""}},
  {"audit_events",
   {"backup.read_audit_events", "SELECT to_jsonb(t)::text AS row FROM audit_events t ORDER BY id"},
   {"restore.insert_audit_events",
    "INSERT INTO audit_events"
    " SELECT * FROM jsonb_populate_recordset(NULL::audit_events, $1::jsonb)"},
   {"restore.sequence_audit_events",
    "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), coalesce(max(id), 0) + 1, false)"
    " FROM audit_events"}},
};

constexpr statement migrations_present = {
  "backup.migrations_present",
  "SELECT to_regclass('public.schema_migrations') IS NOT NULL AS present"};
constexpr statement schema_version_sql = {
  "backup.schema_version", "SELECT coalesce(max(version), 0) AS version FROM schema_migrations"};
constexpr statement public_tables = {
  "backup.public_tables",
  "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"};
constexpr statement upload_totals_sql = {
  "backup.upload_totals",
  "SELECT count(*) AS uploads, coalesce(sum(size), 0) AS bytes FROM uploads"};
constexpr statement live_upload_ids_sql = {
  "backup.live_upload_ids",
  "SELECT id FROM uploads WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))"};
constexpr statement target_counts = {
  "restore.target_counts",
  "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM uploads) AS uploads"};
// Every application table, also those a backup leaves out: their rows hang
// off the users being replaced. CASCADE reaches tables added later.
constexpr statement wipe_tables = {
  "restore.wipe",
  "TRUNCATE users, api_tokens, sessions, login_failures, uploads, tus_uploads, audit_events"
  " RESTART IDENTITY CASCADE"};
// The target's own audit events step aside (negative ids) while the backup's
// are loaded with theirs, then take fresh ids after them.
constexpr statement audit_step_aside = {"restore.audit_step_aside",
                                        "UPDATE audit_events SET id = -id WHERE id > 0"};
constexpr statement audit_renumber = {
  "restore.audit_renumber",
  "UPDATE audit_events SET id = nextval(pg_get_serial_sequence('audit_events', 'id'))"
  " WHERE id < 0"};

// Rows per cursor fetch and per INSERT: a few MiB of JSON at most.
constexpr int batch_rows = 500;
constexpr std::size_t batch_bytes = std::size_t{4} << 20;

const table_statements& statements_for(std::string_view table) {
  for (const auto& t : tables)
    if (t.table == table)
      return t;
  throw std::logic_error("not a backed-up table: " + std::string(table));
}

std::string str(std::string_view s) {
  return std::string(s);
}

pqxx::result run(pqxx::transaction_base& tx, const statement& s) {
  return tx.exec(str(s.sql), str(s.name));
}

int read_schema_version(pqxx::transaction_base& tx) {
  if (!run(tx, migrations_present).at(0)["present"].as<bool>())
    return 0;
  return run(tx, schema_version_sql).at(0)["version"].as<int>();
}

} // namespace

const std::vector<std::string>& backup_tables() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& t : tables)
      out.emplace_back(t.table);
    return out;
  }();
  return names;
}

const std::vector<std::string>& tables_left_out() {
  static const std::vector<std::string> names = {"sessions", "login_failures", "tus_uploads",
                                                 "schema_migrations"};
  return names;
}

// ---- backup_snapshot ------------------------------------------------------------

struct backup_snapshot::impl {
  pqxx::connection conn;
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx;

  explicit impl(const std::string& conninfo) : conn(conninfo), tx(conn, "backup") {}

  // A forward-only cursor over `s`: the snapshot's rows, batch by batch.
  void each_batch(const statement& s, const std::function<void(const pqxx::result&)>& visit) {
    pqxx::icursorstream cursor(tx, str(s.sql), "backup_rows", batch_rows);
    pqxx::result batch;
    while (cursor.get(batch) && !batch.empty())
      visit(batch);
  }
};

backup_snapshot::backup_snapshot(const std::string& conninfo)
  : impl_(std::make_unique<impl>(conninfo)) {}

backup_snapshot::~backup_snapshot() = default;

int backup_snapshot::schema_version() {
  return read_schema_version(impl_->tx);
}

std::vector<std::string> backup_snapshot::unknown_tables() {
  std::vector<std::string> out;
  for (const auto& row : run(impl_->tx, public_tables)) {
    auto name = row["tablename"].as<std::string>();
    auto known = [&](const std::vector<std::string>& list) {
      return std::find(list.begin(), list.end(), name) != list.end();
    };
    if (!known(backup_tables()) && !known(tables_left_out()))
      out.push_back(name);
  }
  return out;
}

backup_snapshot::totals backup_snapshot::upload_totals() {
  auto row = run(impl_->tx, upload_totals_sql).at(0);
  return {row["uploads"].as<uint64_t>(), row["bytes"].as<uint64_t>()};
}

void backup_snapshot::for_each_upload(const std::function<void(const snapshot_upload&)>& visit) {
  impl_->each_batch(statements_for("uploads").read, [&](const pqxx::result& batch) {
    for (const auto& row : batch)
      visit({row["id"].as<std::string>(), row["size"].as<uint64_t>(),
             row["sha256"].as<std::string>(), row["row"].as<std::string>()});
  });
}

void backup_snapshot::for_each_row(const std::string& table,
                                   const std::function<void(std::string_view)>& visit) {
  impl_->each_batch(statements_for(table).read, [&](const pqxx::result& batch) {
    for (const auto& row : batch)
      visit(std::string_view(row["row"].c_str(), row["row"].size()));
  });
}

void backup_snapshot::finish() {
  impl_->tx.commit();
}

// ---- restore --------------------------------------------------------------------

std::set<std::string> live_upload_ids(const std::string& conninfo,
                                      const std::vector<std::string>& ids) {
  std::set<std::string> out;
  if (ids.empty())
    return out;
  pqxx::connection conn(conninfo);
  pqxx::nontransaction tx(conn);
  for (auto row : tx.exec_params(str(live_upload_ids_sql.sql), json_array_of(ids)))
    out.insert(row["id"].as<std::string>());
  return out;
}

target_state inspect_target(const std::string& conninfo) {
  pqxx::connection conn(conninfo);
  pqxx::read_transaction tx(conn);
  target_state out;
  out.schema_version = read_schema_version(tx);
  if (out.schema_version > 0) {
    auto row = run(tx, target_counts).at(0);
    out.users = row["users"].as<uint64_t>();
    out.uploads = row["uploads"].as<uint64_t>();
  }
  return out;
}

struct restore_loader::impl {
  pqxx::connection conn;
  pqxx::work tx;
  std::map<std::string, uint64_t> counts;

  explicit impl(const std::string& conninfo) : conn(conninfo), tx(conn, "restore") {}

  uint64_t insert(const table_statements& t, const boost::json::array& rows) {
    auto result = tx.exec_params(str(t.insert.sql), boost::json::serialize(rows));
    return static_cast<uint64_t>(result.affected_rows());
  }
};

restore_loader::restore_loader(const std::string& conninfo)
  : impl_(std::make_unique<impl>(conninfo)) {}

restore_loader::~restore_loader() = default;

void restore_loader::prepare(bool wipe) {
  run(impl_->tx, wipe ? wipe_tables : audit_step_aside);
}

void restore_loader::load(const std::string& table,
                          const std::function<bool(std::string&)>& next_line) {
  const auto& t = statements_for(table);
  auto& count = impl_->counts[table];
  boost::json::array batch;
  std::size_t batch_size = 0;
  std::string line;
  uint64_t line_no = 0;
  while (next_line(line)) {
    ++line_no;
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    if (ec || !value.is_object())
      throw std::runtime_error("db/" + table + ".jsonl line " + std::to_string(line_no) +
                               " is not a JSON object");
    batch.push_back(std::move(value));
    batch_size += line.size();
    if (batch.size() >= static_cast<std::size_t>(batch_rows) || batch_size >= batch_bytes) {
      count += impl_->insert(t, batch);
      batch.clear();
      batch_size = 0;
    }
  }
  if (!batch.empty())
    count += impl_->insert(t, batch);
}

uint64_t restore_loader::loaded(const std::string& table) const {
  auto it = impl_->counts.find(table);
  return it == impl_->counts.end() ? 0 : it->second;
}

void restore_loader::commit(const boost::json::object& detail) {
  for (const auto& t : tables)
    if (!t.sequence.sql.empty())
      run(impl_->tx, t.sequence);
  run(impl_->tx, audit_renumber);
  record_audit(impl_->tx, audit_actor::cli(), "backup.restored", detail);
  impl_->tx.commit();
}

void record_backup_created(const std::string& conninfo, const boost::json::object& detail) {
  pqxx::connection conn(conninfo);
  pqxx::work tx(conn);
  record_audit(tx, audit_actor::cli(), "backup.created", detail);
  tx.commit();
}

} // namespace portal::db
