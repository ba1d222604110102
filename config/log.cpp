#include "config/log.hpp"

#include "config/utf8_text.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace portal::log {

namespace {
std::mutex out_mutex;

const char* level_name(level lvl) {
  switch (lvl) {
  case level::debug:
    return "debug";
  case level::info:
    return "info";
  case level::warn:
    return "warn";
  case level::error:
    return "error";
  }
  return "info";
}
} // namespace

std::string now_rfc3339() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

void write(level lvl, std::string_view msg, boost::json::object fields) {
  boost::json::object line;
  line["time"] = now_rfc3339();
  line["level"] = level_name(lvl);
  line["msg"] = msg;
  if (!fields.contains("request_id"))
    line["request_id"] = nullptr;
  for (auto& kv : fields)
    line[kv.key()] = std::move(kv.value());
  auto text = json_text(line);
  text.push_back('\n');
  std::lock_guard<std::mutex> guard{out_mutex};
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

} // namespace portal::log
