#include "cli/push_state.hpp"

#include "config/crypto.hpp"

#include <boost/json.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

namespace portal::cli {

namespace fs = std::filesystem;

namespace {

// "PATH: No such file or directory" (with what was tried, when it helps), as
// cp or curl -T say it; errno is the cause.
[[noreturn]] void fail(const std::string& what, const fs::path& path) {
  auto reason = std::error_code(errno, std::generic_category()).message();
  throw std::runtime_error((what.empty() ? "" : what + " ") + path.string() + ": " + reason);
}

} // namespace

push_key push_key_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail("", path);
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error(path.string() + ": not a regular file");
  return {fs::absolute(path).lexically_normal().string(), static_cast<uint64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

fs::path push_state::default_dir(const char* xdg_state_home, const char* home) {
  // The spec: a relative $XDG_STATE_HOME is invalid and to be ignored.
  if (xdg_state_home != nullptr && *xdg_state_home == '/')
    return fs::path(xdg_state_home) / "upload-portal";
  if (home != nullptr && *home == '/')
    return fs::path(home) / ".local" / "state" / "upload-portal";
  throw std::runtime_error("neither XDG_STATE_HOME nor HOME is an absolute path: "
                           "nowhere to remember unfinished uploads");
}

fs::path push_state::file_of(const push_key& key) const {
  std::string text =
    key.path + '\0' + std::to_string(key.size) + '\0' + std::to_string(key.mtime_ns);
  return dir_ / "push" / (crypto::sha256_hex(text) + ".json");
}

std::optional<push_entry> push_state::find(const push_key& key) const {
  std::ifstream in(file_of(key));
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  try {
    auto doc = boost::json::parse(text.str()).as_object();
    if (doc.at("path").as_string() != key.path ||
        doc.at("size").to_number<uint64_t>() != key.size ||
        doc.at("mtime_ns").to_number<int64_t>() != key.mtime_ns)
      return std::nullopt;
    push_entry entry{
      std::string(doc.at("server").as_string()), std::string(doc.at("upload_url").as_string()), {}};
    if (auto* instance = doc.if_contains("instance"))
      entry.instance = std::string(instance->as_string());
    return entry;
  } catch (const std::exception&) {
    return std::nullopt; // unreadable: as if absent, and overwritten later
  }
}

void push_state::remember(const push_key& key, const push_entry& entry) {
  auto file = file_of(key);
  auto dir = file.parent_path();
  std::error_code ec;
  fs::create_directories(dir_.parent_path(), ec); // $XDG_STATE_HOME may not exist yet
  for (const auto& d : {dir_, dir})
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      fail("cannot create the state dir", d);
  std::string text = boost::json::serialize(boost::json::object{{"path", key.path},
                                                                {"size", key.size},
                                                                {"mtime_ns", key.mtime_ns},
                                                                {"server", entry.server},
                                                                {"upload_url", entry.upload_url},
                                                                {"instance", entry.instance}}) +
                     "\n";
  auto temp = file;
  temp += ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    fail("cannot write", temp);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    errno = err;
    fail("cannot write", file);
  }
}

void push_state::forget(const push_key& key) {
  auto file = file_of(key);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT)
    fail("cannot remove", file);
}

} // namespace portal::cli
