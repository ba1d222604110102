#include "db/query.hpp"

#include <boost/json.hpp>

namespace portal::db {

namespace {

constexpr std::string_view open = "/* ";
constexpr std::string_view close = " */ ";

} // namespace

std::string statement_text(const query& q) {
  std::string out;
  out.reserve(open.size() + q.name.size() + close.size() + q.sql.size());
  out.append(open).append(q.name).append(close).append(q.sql);
  return out;
}

std::string_view statement_name(std::string_view sent) {
  if (sent.substr(0, open.size()) != open)
    return {};
  sent.remove_prefix(open.size());
  auto end = sent.find(close);
  return end == std::string_view::npos ? std::string_view{} : sent.substr(0, end);
}

std::string json_array_of(const std::vector<std::string>& values) {
  boost::json::array a;
  a.reserve(values.size());
  for (const auto& v : values)
    a.emplace_back(v);
  return boost::json::serialize(a);
}

std::optional<std::string> optional_text(const pqxx::field& f) {
  if (f.is_null())
    return std::nullopt;
  return f.as<std::string>();
}

} // namespace portal::db
