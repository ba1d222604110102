#include "cli/push_command.hpp"

#include "cli/backoff.hpp"
#include "cli/http_client.hpp"
#include "cli/progress.hpp"
#include "cli/push_state.hpp"
#include "cli/report.hpp"
#include "cli/tus_client.hpp"
#include "storage/failpoints.hpp"
#include "storage/sha256_hasher.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iomanip>
#include <iostream>
#include <unistd.h>

namespace portal::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* push_usage = R"(usage: upload-portal push FILE... --url URL

Uploads each FILE to the server at URL (http:// or https://, the base URL;
its tus endpoint URL .../api/v1/tus/ works too) over tus, resuming where an
earlier run stopped. The API token is read from
PORTAL_TOKEN. Prints each upload object (JSON) on stdout once the server's
sha256 matched the file's.

environment:
  PORTAL_TOKEN              the API token (required)
  PORTAL_PUSH_CHUNK_BYTES   bytes per PATCH (default 8388608, 64 KiB to 1 GiB)
  XDG_STATE_HOME            unfinished uploads are remembered in
                            $XDG_STATE_HOME/upload-portal/push/ (default
                            ~/.local/state/upload-portal/push/)
)";

constexpr uint64_t default_chunk_bytes = uint64_t{8} << 20;
constexpr auto request_timeout = std::chrono::seconds(60);

uint64_t chunk_bytes() {
  const char* text = std::getenv("PORTAL_PUSH_CHUNK_BYTES");
  if (text == nullptr || *text == '\0')
    return default_chunk_bytes;
  uint64_t v = 0;
  auto end = text + std::strlen(text);
  auto [at, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || at != end || v < (uint64_t{64} << 10) || v > (uint64_t{1} << 30))
    throw std::runtime_error("PORTAL_PUSH_CHUNK_BYTES must be a number of bytes from 65536 to "
                             "1073741824");
  return v;
}

class input_file {
public:
  explicit input_file(const std::string& name)
    : name_(name), fd_(::open(name.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0)
      throw std::runtime_error(name + ": " + std::strerror(errno));
  }
  ~input_file() { ::close(fd_); }
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  // Exactly n bytes at offset, else std::runtime_error (the file shrank).
  std::string read(uint64_t offset, std::size_t n) const {
    std::string data(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      auto r = ::pread(fd_, data.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        throw std::runtime_error(name_ + ": " +
                                 (r < 0 ? std::strerror(errno) : "shrank while being pushed"));
      got += static_cast<std::size_t>(r);
    }
    return data;
  }

private:
  std::string name_;
  int fd_;
};

// The local file's SHA-256, fed from the chunks as they are read when they
// follow each other, and from the file for whatever they skipped (a resumed
// upload's prefix, a range sent again after a re-sync).
class file_digest {
public:
  explicit file_digest(const input_file& file) : file_(file) {}

  void feed(uint64_t offset, const std::string& data) {
    if (offset != hashed_)
      return;
    hasher_.update(data.data(), data.size());
    hashed_ += data.size();
  }

  // Reads what was skipped, up to byte `to`.
  void catch_up(uint64_t to) {
    constexpr uint64_t step = uint64_t{4} << 20;
    while (hashed_ < to)
      feed(hashed_, file_.read(hashed_, static_cast<std::size_t>(std::min(step, to - hashed_))));
  }

  std::string finish(uint64_t size) {
    catch_up(size);
    return hasher_.hex_digest();
  }

private:
  const input_file& file_;
  storage::sha256_hasher hasher_;
  uint64_t hashed_ = 0;
};

struct push_run {
  std::string server; // --url as given
  tus_client& tus;
  tus_capabilities caps;
  push_state& state;
  uint64_t chunk;
};

// Brings the upload of `key` to its end; returns the upload URL and the bytes
// this run sent. Resumes the remembered upload when the server still has it.
struct transfer {
  std::string upload_url;
  std::string instance; // Portal-Instance, pinned with fly-force-instance-id
  uint64_t resumed_at = 0;
  uint64_t sent = 0;
};

transfer send_file(push_run& run, const std::string& name, const push_key& key,
                   const input_file& file, file_digest& digest) {
  std::string filename = fs::path(name).filename().string();
  backoff retry(name);
  transfer t;
  uint64_t offset = 0;
  if (auto entry = run.state.find(key); entry && entry->server == run.server) {
    std::optional<tus_offset> at;
    run.tus.pin_instance(entry->instance);
    for (;;) {
      try {
        at = run.tus.head(entry->upload_url);
        break;
      } catch (...) {
        retry.wait_or_rethrow();
      }
    }
    if (at && at->length == key.size && at->offset <= key.size) {
      t.upload_url = entry->upload_url;
      t.instance = entry->instance;
      offset = t.resumed_at = at->offset;
    } else {
      run.state.forget(key); // gone (404/410) or not this file's upload
    }
  }
  if (t.upload_url.empty()) {
    for (;;) {
      try {
        auto made = run.tus.create(key.size, filename);
        t.upload_url = made.upload_url;
        t.instance = made.instance;
        break;
      } catch (...) {
        retry.wait_or_rethrow();
      }
    }
    run.state.remember(key, {run.server, t.upload_url, t.instance});
  }
  run.tus.pin_instance(t.instance);
  retry.reset();

  digest.catch_up(offset); // the resumed prefix, so the chunks follow on
  progress shown("push " + printable(filename), key.size, offset);
  bool resync = false;
  // Where the PATCH whose answer was lost would have ended: what a re-sync
  // finds kept up to there, this run sent (not what another client sent).
  uint64_t lost_end = offset;
  int conflicts = 0;
  while (resync || offset < key.size) {
    try {
      if (resync) {
        auto at = run.tus.head(t.upload_url);
        if (!at) {
          run.state.forget(key);
          throw std::runtime_error(name + ": the server no longer has the upload " + t.upload_url +
                                   "; run push again to start over");
        }
        // What the server kept of a request whose answer was lost (a 503
        // from the last PATCH's record, a cut connection) was sent too.
        if (std::min(at->offset, lost_end) > offset)
          t.sent += std::min(at->offset, lost_end) - offset;
        offset = at->offset;
        resync = false;
        continue;
      }
      auto n = static_cast<std::size_t>(std::min(run.chunk, key.size - offset));
      std::string data = file.read(offset, n);
      digest.feed(offset, data);
      lost_end = offset + n; // until answered
      uint64_t next = run.tus.patch(t.upload_url, offset, std::move(data), run.caps.sha256);
      if (next <= offset || next > key.size)
        throw std::runtime_error(name + ": the server answered the offset " + std::to_string(next) +
                                 " to a PATCH at " + std::to_string(offset));
      t.sent += next - offset;
      offset = lost_end = next;
      retry.reset();
      conflicts = 0;
      shown.update(offset);
      storage::failpoints::after_push_patch(offset);
    } catch (const tus_status_error& e) {
      if (e.status == 404 || e.status == 410) {
        run.state.forget(key);
        throw std::runtime_error(name + ": " + e.what() + "; run push again to start over");
      }
      if (e.status == 415 || e.status == 422) // failed validation: the server deleted it
        run.state.forget(key);
      if (e.status != 409)
        retry.wait_or_rethrow();
      else if (++conflicts > 8) // the offset keeps moving under us
        throw;
      else
        lost_end = offset; // refused before its body was read: nothing of it went up
      resync = true;
    } catch (const boost::beast::system_error&) {
      retry.wait_or_rethrow();
      resync = true;
    }
  }
  return t;
}

std::string push_file(push_run& run, const std::string& name) {
  auto key = push_key_of(name);
  if (run.caps.max_size && key.size > *run.caps.max_size)
    throw std::runtime_error(name + ": " + human_bytes(key.size) +
                             " is over the server's limit of " + human_bytes(*run.caps.max_size));
  input_file file(name);
  file_digest digest(file);
  auto started = std::chrono::steady_clock::now();
  transfer t = send_file(run, name, key, file, digest);
  run.state.forget(key); // complete: nothing left to resume
  std::string local = digest.finish(key.size);
  auto now = push_key_of(name);
  if (now.size != key.size || now.mtime_ns != key.mtime_ns)
    throw std::runtime_error(name + ": changed while being pushed");

  backoff retry(name);
  std::string text;
  for (;;) {
    try {
      text = run.tus.upload_object(tus_client::id_of(t.upload_url));
      break;
    } catch (...) {
      retry.wait_or_rethrow();
    }
  }
  boost::json::value object;
  std::string remote;
  try {
    object = boost::json::parse(text);
    remote = std::string(object.as_object().at("sha256").as_string());
  } catch (const std::exception&) {
    throw std::runtime_error(name + ": the server's upload object has no sha256");
  }
  if (remote != local)
    throw std::runtime_error(name + ": sha256 mismatch: the server holds " + remote +
                             ", the file is " + local + " (upload " +
                             tus_client::id_of(t.upload_url) + ")");
  double seconds =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << "push " << printable(name) << ": " << human_bytes(key.size) << " uploaded as "
            << tus_client::id_of(t.upload_url) << ", sent " << human_bytes(t.sent);
  if (t.resumed_at > 0)
    std::cerr << " (resumed at " << human_bytes(t.resumed_at) << ")";
  std::cerr << " in " << std::fixed << std::setprecision(1) << seconds << " s, sha256 " << local
            << " verified\n";
  return boost::json::serialize(object);
}

} // namespace

int push_command(const config_loader&, const args& words) {
  return guarded("push", push_usage, [&] {
    auto a = parse_args(words, 0, {"--url"});
    if (a.positional.empty())
      throw usage_error("missing FILE");
    auto url_text = a.value("--url");
    if (!url_text)
      throw usage_error("missing --url URL");
    auto url = boost::urls::parse_absolute_uri(*url_text);
    if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty())
      throw usage_error("--url must be an http:// or https:// URL with a host");
    const char* token = std::getenv("PORTAL_TOKEN");
    if (token == nullptr || *token == '\0')
      throw std::runtime_error("PORTAL_TOKEN is not set: create a token with `upload-portal token "
                               "create` and export it");
    push_state state(push_state::default_dir(std::getenv("XDG_STATE_HOME"), std::getenv("HOME")));
    uint64_t chunk = chunk_bytes();
    for (const auto& name : a.positional)
      push_key_of(name); // every FILE readable before the first byte goes out

    http_client http(*url, request_timeout);
    tus_client tus(http, *url, token);
    tus_capabilities caps;
    backoff retry(*url_text);
    for (;;) {
      try {
        caps = tus.options();
        break;
      } catch (...) {
        retry.wait_or_rethrow();
      }
    }
    push_run run{*url_text, tus, caps, state, chunk};
    for (const auto& name : a.positional) {
      std::string object;
      try {
        object = push_file(run, name);
      } catch (const tus_status_error& e) { // a refusal: which file of several
        throw std::runtime_error(name + ": " + e.what());
      }
      std::cout << object << std::endl;
    }
    return exit_ok;
  });
}

} // namespace portal::cli
