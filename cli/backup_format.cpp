#include "cli/backup_format.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_to.hpp>

namespace portal::cli {

namespace json = boost::json;

namespace {

constexpr const char* format_name = "upload-portal-backup";

// Field access that turns a malformed document into one clear line.
template <class F>
auto field(const char* doc, F read) {
  try {
    return read();
  } catch (const std::exception&) {
    throw backup_format_error(std::string(doc) + " is malformed");
  }
}

json::value parse_json(const char* doc, const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object())
    throw backup_format_error(std::string(doc) + " is not a JSON object");
  return v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

std::string to_json(const backup_header& h) {
  return json::serialize(json::object{{"format", format_name},
                                      {"format_version", backup_format_version},
                                      {"portal_version", h.portal_version},
                                      {"schema_version", h.schema_version},
                                      {"created_at", h.created_at}});
}

backup_header parse_backup_header(const std::string& text) {
  auto v = parse_json(backup_header_name, text);
  const auto& o = v.as_object();
  auto format = o.if_contains("format");
  if (!format || !format->is_string() || format->as_string() != format_name)
    throw backup_format_error("not an upload-portal backup (backup.json has no matching format)");
  return field(backup_header_name, [&] {
    auto version = o.at("format_version").to_number<int>();
    if (version != backup_format_version)
      throw backup_format_error("backup format version " + std::to_string(version) +
                                " is not supported (this upload-portal reads version " +
                                std::to_string(backup_format_version) + ")");
    return backup_header{json::value_to<std::string>(o.at("portal_version")),
                         o.at("schema_version").to_number<int>(),
                         json::value_to<std::string>(o.at("created_at"))};
  });
}

std::string to_json(const backup_manifest& m) {
  json::array members;
  members.reserve(m.members.size());
  for (const auto& e : m.members)
    members.push_back(
      json::object{{"name", e.name}, {"size", e.digest.size}, {"sha256", e.digest.sha256}});
  json::object rows;
  for (const auto& [table, count] : m.rows)
    rows[table] = count;
  json::array skipped(m.skipped_uploads.begin(), m.skipped_uploads.end());
  return json::serialize(json::object{{"members", std::move(members)},
                                      {"rows", std::move(rows)},
                                      {"skipped_uploads", std::move(skipped)}});
}

backup_manifest parse_manifest(const std::string& text) {
  auto v = parse_json(manifest_name, text);
  return field(manifest_name, [&] {
    const auto& o = v.as_object();
    backup_manifest m;
    for (const auto& e : o.at("members").as_array()) {
      const auto& entry = e.as_object();
      m.members.push_back({json::value_to<std::string>(entry.at("name")),
                           {entry.at("size").to_number<uint64_t>(),
                            json::value_to<std::string>(entry.at("sha256"))}});
    }
    for (const auto& [table, count] : o.at("rows").as_object())
      m.rows[std::string(table)] = count.to_number<uint64_t>();
    for (const auto& id : o.at("skipped_uploads").as_array())
      m.skipped_uploads.push_back(json::value_to<std::string>(id));
    return m;
  });
}

std::string rows_member(const std::string& table) {
  return rows_prefix + table + rows_suffix;
}

std::optional<std::string> table_of(const std::string& member) {
  std::string prefix = rows_prefix;
  if (member.rfind(prefix, 0) != 0 || !ends_with(member, rows_suffix))
    return std::nullopt;
  return member.substr(prefix.size(),
                       member.size() - prefix.size() - std::string(rows_suffix).size());
}

std::optional<std::string> upload_id_of(const std::string& member) {
  std::string prefix = archive_prefix;
  if (member.rfind(prefix, 0) != 0)
    return std::nullopt;
  return member.substr(prefix.size());
}

} // namespace portal::cli
