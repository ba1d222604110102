// The layout of a backup file (SPEC §2 `backup FILE.tar.zst`), in member
// order:
//
//   backup.json             {"format": "upload-portal-backup", "format_version": 1,
//                            "portal_version", "schema_version", "created_at"}
//   archives/<upload id>    each stored archive of the snapshot, as stored
//   db/<table>.jsonl        the snapshot's rows, one JSON object per line
//                           (db/backup_rows.hpp: users, api_tokens, uploads,
//                           audit_events)
//   manifest.json           {"members": [{"name", "size", "sha256"}...],
//                            "rows": {"<table>": count...},
//                            "skipped_uploads": [ids deleted while the backup ran]}
//
// The manifest comes last because the archives are hashed on their way in;
// restore verifies every member against it before it changes anything.
#pragma once

#include "storage/backup_writer.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace portal::cli {

inline constexpr const char* backup_header_name = "backup.json";
inline constexpr const char* manifest_name = "manifest.json";
inline constexpr const char* archive_prefix = "archives/";
inline constexpr const char* rows_prefix = "db/";
inline constexpr const char* rows_suffix = ".jsonl";
inline constexpr int backup_format_version = 1;

// A backup that cannot be used; the message is the one line to show.
struct backup_format_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct backup_header {
  std::string portal_version;
  int schema_version = 0;
  std::string created_at; // RFC 3339 UTC
};

std::string to_json(const backup_header& h);
// Throws backup_format_error for anything but a format_version 1 header.
backup_header parse_backup_header(const std::string& text);

struct manifest_entry {
  std::string name;
  storage::member_digest digest;
};

struct backup_manifest {
  std::vector<manifest_entry> members;
  std::map<std::string, uint64_t> rows;
  std::vector<std::string> skipped_uploads;
};

std::string to_json(const backup_manifest& m);
// Throws backup_format_error.
backup_manifest parse_manifest(const std::string& text);

// "db/users.jsonl" for "users".
std::string rows_member(const std::string& table);
// The table of a "db/<table>.jsonl" name, the id of an "archives/<id>" name.
std::optional<std::string> table_of(const std::string& member);
std::optional<std::string> upload_id_of(const std::string& member);

} // namespace portal::cli
