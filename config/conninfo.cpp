#include "config/conninfo.hpp"

#include <libpq-fe.h>
#include <memory>

namespace portal {

namespace {

struct conninfo_free {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using conninfo_ptr = std::unique_ptr<PQconninfoOption, conninfo_free>;

// Null when libpq rejects the string. libpq's own message is dropped: it can
// quote the part of the string around the error, password included.
conninfo_ptr parse(const std::string& text) {
  char* err = nullptr;
  conninfo_ptr opts(PQconninfoParse(text.c_str(), &err));
  if (err)
    PQfreemem(err);
  return opts;
}

bool is_secret_option(const PQconninfoOption& o) {
  std::string_view key = o.keyword;
  if ((o.dispchar && o.dispchar[0] == '*') || key.find("password") != std::string_view::npos)
    return true;
  // A dbname may itself hold a whole connection string, password and all.
  std::string_view val = o.val;
  return key == "dbname" &&
         (val.find('=') != std::string_view::npos || val.find("://") != std::string_view::npos);
}

// The keyword=value quoting of libpq's documentation (34.1.1): single quotes,
// with \' and \\ inside, when the value is empty or holds blanks or quotes.
std::string quote_option(std::string_view v) {
  bool plain = !v.empty() && v.find_first_of(" \t\n\r\f\v'\\") == std::string_view::npos;
  if (plain)
    return std::string(v);
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "'";
}

} // namespace

bool valid_conninfo(const std::string& text) {
  return parse(text) != nullptr;
}

std::optional<std::string> conninfo_value(const std::string& text, std::string_view keyword) {
  auto opts = parse(text);
  if (!opts)
    return std::nullopt;
  for (auto* o = opts.get(); o->keyword; ++o)
    if (keyword == o->keyword && o->val)
      return std::string(o->val);
  return std::nullopt;
}

// Rebuilt from libpq's own parse so that no hand-written URL surgery can miss
// a password.
std::string redact_conninfo(const std::string& text) {
  if (text.empty())
    return text;
  auto opts = parse(text);
  if (!opts)
    return "[unparseable, redacted]";
  std::string out;
  for (auto* o = opts.get(); o->keyword; ++o) {
    if (!o->val)
      continue;
    if (!out.empty())
      out += ' ';
    out += o->keyword;
    out += '=';
    out += is_secret_option(*o) ? "[redacted]" : quote_option(o->val);
  }
  return out;
}

} // namespace portal
