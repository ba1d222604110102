// libpq connection strings (DATABASE_URL, DATABASE_DIRECT_URL: SPEC §3), read
// only by libpq's own parser, PQconninfoParse, so that a URL and a
// keyword=value list mean here exactly what they mean to libpq. A connection
// string may carry a password: nothing here puts one in a message.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portal {

// Whether libpq accepts `text` (a postgresql:// URL or a keyword=value list).
// libpq's own complaint is never shown: it can quote the string around the
// mistake, password included.
bool valid_conninfo(const std::string& text);

// The value libpq reads for `keyword` (e.g. "sslmode"); nullopt when unset
// or when `text` is not valid.
std::optional<std::string> conninfo_value(const std::string& text, std::string_view keyword);

// `text` rebuilt as keyword=value from libpq's parse, every secret (password,
// sslpassword, a dbname that holds a whole connection string) shown as
// [redacted]; "[unparseable, redacted]" for an invalid one; "" for "".
std::string redact_conninfo(const std::string& text);

} // namespace portal
