// The pieces of `upload-portal push` that need no server: where it remembers
// unfinished uploads (cli/push_state), the tus header encodings
// (cli/tus_client) and the retry schedule (cli/backoff). The exchanges
// themselves are tested against the real server in tests/e2e/test_push.py.
#include "cli/backoff.hpp"
#include "cli/push_state.hpp"
#include "cli/report.hpp"
#include "cli/tus_client.hpp"
#include "tests/unit/file_text.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <unistd.h>

using namespace portal::cli;
namespace fs = std::filesystem;

using portal::test::write_file;

namespace {

struct temp_dir {
  fs::path root;
  temp_dir() {
    static std::atomic<int> counter{0};
    root = fs::temp_directory_path() /
           ("portal-push-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(root);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

} // namespace

TEST_CASE("the state dir follows the XDG rules", "[push]") {
  CHECK(push_state::default_dir("/x/state", "/home/u") == fs::path("/x/state/upload-portal"));
  CHECK(push_state::default_dir(nullptr, "/home/u") ==
        fs::path("/home/u/.local/state/upload-portal"));
  // a relative XDG_STATE_HOME is to be ignored
  CHECK(push_state::default_dir("state", "/home/u") ==
        fs::path("/home/u/.local/state/upload-portal"));
  CHECK_THROWS_AS(push_state::default_dir(nullptr, nullptr), std::runtime_error);
  CHECK_THROWS_AS(push_state::default_dir("", "rel"), std::runtime_error);
}

TEST_CASE("a file's key is its absolute path, size and mtime", "[push]") {
  temp_dir t;
  auto file = write_file(t.root / "a.tar.gz", "12345");
  auto key = push_key_of(file);
  CHECK(key.path == file.string());
  CHECK(key.size == 5);
  CHECK(key.mtime_ns > 0);
  CHECK_THROWS_AS(push_key_of(t.root), std::runtime_error); // a directory
  CHECK_THROWS_WITH(push_key_of(t.root / "missing"),
                    (t.root / "missing").string() + ": No such file or directory");
}

TEST_CASE("an upload is remembered under its key until forgotten", "[push]") {
  temp_dir t;
  push_state state(t.root / "state" / "upload-portal"); // made on first use
  push_key key{"/data/a.tar.gz", 1000, 1234567890123};
  CHECK_FALSE(state.find(key));
  state.remember(key, {"http://h:1", "http://h:1/api/v1/tus/abc", "machine-1"});
  auto entry = state.find(key);
  REQUIRE(entry);
  CHECK(entry->server == "http://h:1");
  CHECK(entry->upload_url == "http://h:1/api/v1/tus/abc");
  CHECK(entry->instance == "machine-1");

  struct stat st {};
  REQUIRE(::stat(state.file_of(key).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(state.file_of(key).parent_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  // another size, mtime or path is another file
  for (auto other :
       {push_key{key.path, 1001, key.mtime_ns}, push_key{key.path, key.size, key.mtime_ns + 1},
        push_key{"/data/b.tar.gz", key.size, key.mtime_ns}})
    CHECK_FALSE(state.find(other));

  state.remember(key, {"http://h:1", "http://h:1/api/v1/tus/def", ""}); // replaced
  CHECK(state.find(key)->upload_url == "http://h:1/api/v1/tus/def");
  CHECK(state.find(key)->instance.empty());
  CHECK(fs::directory_iterator(state.file_of(key).parent_path()) != fs::directory_iterator());
  state.forget(key);
  CHECK_FALSE(state.find(key));
  CHECK(fs::is_empty(state.file_of(key).parent_path())); // no temporary left
  state.forget(key);                                     // forgetting twice is fine
}

TEST_CASE("a damaged entry is no entry", "[push]") {
  temp_dir t;
  push_state state(t.root);
  push_key key{"/data/a.tar.gz", 10, 1};
  state.remember(key, {"http://h", "http://h/api/v1/tus/x", ""});
  for (const char* text :
       {"", "{", "[]", R"({"path":"/data/a.tar.gz"})",
        R"({"path":"/other","size":10,"mtime_ns":1,"server":"s","upload_url":"u"})"}) {
    write_file(state.file_of(key), text);
    CHECK_FALSE(state.find(key));
  }
}

TEST_CASE("tus header encodings", "[push]") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("a.tar.gz") == "YS50YXIuZ3o=");
  // sha256("abc"), FIPS 180-2 appendix B.1, in base64
  CHECK(tus_checksum_sha256("abc") == "sha256 ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  CHECK(tus_client::id_of("http://h/api/v1/tus/01ABC") == "01ABC");
}

TEST_CASE("what is worth another try", "[push]") {
  for (unsigned s : {500u, 502u, 503u, 423u, 429u})
    CHECK(tus_status_error(s, "x").transient());
  for (unsigned s : {400u, 401u, 403u, 404u, 409u, 410u, 413u, 422u, 460u})
    CHECK_FALSE(tus_status_error(s, "x").transient());
}

TEST_CASE("the backoff doubles up to its cap", "[push]") {
  using std::chrono::milliseconds;
  CHECK(backoff::delay(1) == milliseconds(500));
  CHECK(backoff::delay(2) == milliseconds(1000));
  CHECK(backoff::delay(3) == milliseconds(2000));
  CHECK(backoff::delay(7) == milliseconds(30000));
  CHECK(backoff::delay(60) == milliseconds(30000));
}

TEST_CASE("a final status is rethrown at once, a transient one is not after the last attempt",
          "[push]") {
  backoff retry("push x", 1);
  auto fails_with = [&](unsigned status) {
    try {
      throw tus_status_error(status, "boom");
    } catch (...) {
      retry.wait_or_rethrow();
    }
  };
  CHECK_THROWS_AS(fails_with(403), tus_status_error);
  // One attempt only, so no wait: the last line says what gave up, and why.
  CHECK_THROWS_WITH(fails_with(503), "push x: boom (gave up after 1 attempt)");
}

TEST_CASE("a file's name is printed on one line", "[push]") {
  CHECK(printable("dir\nx/a.tar.gz") == "dir\\nx/a.tar.gz");
  CHECK(printable(std::string("a\tb\r\x1b\x7f", 6)) == "a\\tb\\r\\x1b\\x7f");
  CHECK(printable("caf\xc3\xa9.tar.gz") == "caf\xc3\xa9.tar.gz"); // UTF-8 stays as it is
}
