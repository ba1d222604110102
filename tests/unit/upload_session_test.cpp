// The upload_session's protocol (actors/upload_session.hpp) with its real
// stages: an archive_validator and a storage_writer over a temporary data
// dir, and no database (so the record step fails `unavailable` at once).
// The writer is detached, so this runs on a real scheduler; the test waits on
// what the session tells the connection (credit, the one answer), each with
// a deadline.
#include "actors/caf_error.hpp"
#include "actors/storage_writer.hpp"
#include "actors/upload_session.hpp"
#include "tests/unit/archive_corpus.hpp"
#include "tests/unit/temp_data_dir.hpp"
#include "tests/unit/test_chunks.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

using namespace portal;
using namespace std::chrono_literals;

namespace {

constexpr auto reply_deadline = 10s;

struct session_config : caf::actor_system_config {
  session_config() {
    set("scheduler.max-threads", 2);
    register_error_codes(*this);
  }
};

// What the connection side hears of one upload.
struct heard {
  std::mutex m;
  std::condition_variable cv;
  std::size_t credits = 0;
  std::optional<upload_answer> answer;
  std::vector<std::pair<error_code, uint64_t>> failed; // the request's `failed` hook

  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock<std::mutex> lock{m};
    return cv.wait_for(lock, reply_deadline, pred);
  }
};

struct session_fixture {
  session_config cfg;
  caf::actor_system sys{cfg};
  temp_data_dir data;
  std::shared_ptr<actor_directory> dir = std::make_shared<actor_directory>();
  caf::scoped_actor self{sys};
  storage_writer_actor writer;
  std::shared_ptr<heard> out = std::make_shared<heard>();
  upload_limits limits;

  explicit session_fixture(bool with_writer = true) {
    limits.max_bytes = 1 << 20;
    limits.archive = test::default_limits();
    if (!with_writer)
      return;
    auto probe = std::make_shared<actor_probe>();
    writer = spawn_storage_writer(self.ptr(), probe, data.layout);
    dir->record(actor_entry{"storage_writer_1", "storage_writer", "", writer.id(), 0, probe},
                caf::actor_cast<caf::actor>(writer), false);
  }
  ~session_fixture() { self->send_exit(writer, caf::exit_reason::user_shutdown); }

  // The session of upload "u1", its answer and credit going to `out`.
  upload_session_actor start(storage::archive_format f = storage::archive_format::tar_gz) {
    auto o = out;
    auto link = std::make_shared<upload_link>(
      [o](std::size_t n) {
        std::lock_guard<std::mutex> lock{o->m};
        o->credits += n;
        o->cv.notify_all();
      },
      [o](upload_answer a) {
        std::lock_guard<std::mutex> lock{o->m};
        o->answer = std::move(a);
        o->cv.notify_all();
      });
    auto failed = [o](const failure& fl, uint64_t bytes) {
      std::lock_guard<std::mutex> lock{o->m};
      o->failed.emplace_back(fl.code, bytes);
    };
    upload_request req{
      "u1",        "a.tar.gz", f,  db::identity{7, "up", "uploader", {}, {}, {}, {}},
      "127.0.0.1", "rid-1",    {}, failed};
    return spawn_upload_session(sys, dir, limits, std::move(req), nullptr, std::move(link));
  }

  upload_answer answer() {
    REQUIRE(out->wait([&] { return out->answer.has_value(); }));
    return *out->answer;
  }

  // The writer has handled everything the session sent it before it
  // answered (one sender's messages arrive in order, and the session sends
  // discard/remove before it answers): ask it something after.
  void writer_barrier() {
    bool answered = false;
    self->request(writer, caf::duration{reply_deadline}, commit_atom::value, std::string{"barrier"})
      .receive([&](commit_result&) { answered = true; }, [&](caf::error&) { answered = true; });
    REQUIRE(answered);
  }
  bool nothing_on_disk() const {
    return std::filesystem::is_empty(data.layout.tmp) &&
           std::filesystem::is_empty(data.layout.archives);
  }
};

// About 20 KB compressed: random bytes do not compress.
std::string good_archive(storage::archive_format f) {
  std::mt19937 rng(42);
  std::string noise(20000, '\0');
  for (auto& c : noise)
    c = static_cast<char>(rng());
  return test::compress(f, test::write_tar({{"a.bin", '0', noise}}));
}

} // namespace

TEST_CASE("session: a whole archive is validated, committed, then recorded", "[actors][session]") {
  session_fixture fx;
  auto s = fx.start();
  for (auto& c : test::chunks_of(good_archive(storage::archive_format::tar_gz), 4096))
    caf::anon_send(s, chunk_atom::value, c);
  caf::anon_send(s, eof_atom::value);
  // No database: the record step fails, and the committed archive goes.
  auto a = fx.answer();
  CHECK(a.error.code == error_code::unavailable);
  CHECK(a.upload.empty());
  fx.writer_barrier();
  CHECK(fx.nothing_on_disk());
  REQUIRE(fx.out->failed.size() == 1);
  CHECK(fx.out->failed[0].first == error_code::unavailable);
}

TEST_CASE("session: one credit per chunk both stages consumed", "[actors][session]") {
  session_fixture fx;
  auto s = fx.start();
  auto chunks = test::chunks_of(good_archive(storage::archive_format::tar_gz), 512);
  REQUIRE(chunks.size() > 3);
  for (std::size_t i = 0; i < 3; ++i)
    caf::anon_send(s, chunk_atom::value, chunks[i]);
  CHECK(fx.out->wait([&] { return fx.out->credits == 3; }));
  CHECK_FALSE(fx.out->answer);

  SECTION("the client goes away: client_closed, the partial file removed") {
    caf::anon_send(s, abort_atom::value);
    CHECK(fx.answer().error.code == error_code::client_closed);
    fx.writer_barrier();
    CHECK(fx.nothing_on_disk());
  }
}

TEST_CASE("session: refusals are answered once, with nothing left behind", "[actors][session]") {
  session_fixture fx;
  SECTION("not the declared compression") {
    auto s = fx.start(storage::archive_format::tar_gz);
    caf::anon_send(s, chunk_atom::value, test::make_chunk("plain text, not gzip"));
    CHECK(fx.answer().error.code == error_code::unsupported_media_type);
    REQUIRE(fx.out->failed.size() == 1);
    CHECK(fx.out->failed[0] == std::make_pair(error_code::unsupported_media_type, uint64_t{20}));
  }
  SECTION("past the size limit") {
    fx.limits.max_bytes = 1000;
    auto s = fx.start();
    for (auto& c : test::chunks_of(good_archive(storage::archive_format::tar_gz), 600))
      caf::anon_send(s, chunk_atom::value, c);
    auto a = fx.answer();
    CHECK(a.error.code == error_code::payload_too_large);
  }
  SECTION("past what the quota left") {
    fx.limits.quota = 5000;
    fx.limits.quota_left = 700;
    auto s = fx.start();
    for (auto& c : test::chunks_of(good_archive(storage::archive_format::tar_gz), 600))
      caf::anon_send(s, chunk_atom::value, c);
    auto a = fx.answer();
    CHECK(a.error.code == error_code::quota_exceeded);
  }
  SECTION("an archive cut short: invalid_archive at the end") {
    auto gz = good_archive(storage::archive_format::tar_gz);
    gz.resize(gz.size() - 10);
    auto s = fx.start();
    caf::anon_send(s, chunk_atom::value, test::make_chunk(gz));
    caf::anon_send(s, eof_atom::value);
    CHECK(fx.answer().error.code == error_code::invalid_archive);
  }
  fx.writer_barrier();
  CHECK(fx.nothing_on_disk());
  CHECK(fx.out->failed.size() == 1);
}

TEST_CASE("session: no storage writer: storage_unavailable at once", "[actors][session]") {
  session_fixture fx{false};
  fx.start();
  CHECK(fx.answer().error.code == error_code::storage_unavailable);
}

TEST_CASE("session: a session that dies answers internal through its link", "[actors][session]") {
  session_fixture fx;
  auto s = fx.start();
  caf::anon_send(s, chunk_atom::value,
                 test::chunks_of(good_archive(storage::archive_format::tar_gz), 512)[0]);
  caf::anon_send_exit(s, caf::exit_reason::kill);
  CHECK(fx.answer().error.code == error_code::internal);
  CHECK(fx.answer().error.message == "the upload failed");
}
