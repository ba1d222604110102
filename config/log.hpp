// One JSON object per line on stdout (SPEC §9): time, level, msg, request_id,
// plus whatever fields help. Thread-safe; never pass secrets in fields.
#pragma once

#include <boost/json/object.hpp>

#include <string_view>

namespace portal::log {

enum class level { debug, info, warn, error };

// Writes {"time":..., "level":..., "msg":..., <fields>} as one line.
void write(level lvl, std::string_view msg, boost::json::object fields = {});

inline void info(std::string_view msg, boost::json::object fields = {}) {
  write(level::info, msg, std::move(fields));
}
inline void warn(std::string_view msg, boost::json::object fields = {}) {
  write(level::warn, msg, std::move(fields));
}
inline void error(std::string_view msg, boost::json::object fields = {}) {
  write(level::error, msg, std::move(fields));
}

// RFC 3339 UTC timestamp with milliseconds, e.g. 2026-11-22T10:00:00.123Z.
std::string now_rfc3339();

} // namespace portal::log
