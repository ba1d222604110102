// The storage_writer's protocol (actors/storage_writer.hpp). The writer is
// detached (its own thread: it blocks in write and fsync), so this runs on a
// real scheduler and waits on each answer with a deadline. Messages from one
// sender arrive in order, so a request after a one-way message (discard,
// remove) is answered only after that message was handled.
#include "actors/caf_error.hpp"
#include "actors/storage_writer.hpp"
#include "tests/unit/temp_data_dir.hpp"
#include "tests/unit/test_chunks.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <variant>

using namespace portal;
using namespace std::chrono_literals;

namespace {

struct writer_config : caf::actor_system_config {
  writer_config() {
    set("scheduler.max-threads", 2);
    register_error_codes(*this);
  }
};

template <class T>
using writer_answer = std::variant<T, failure>;

struct writer_fixture {
  writer_config cfg;
  caf::actor_system sys{cfg};
  temp_data_dir data;
  caf::scoped_actor self{sys};
  storage_writer_actor w =
    spawn_storage_writer(self.ptr(), std::make_shared<actor_probe>(), data.layout);

  ~writer_fixture() { self->send_exit(w, caf::exit_reason::user_shutdown); }

  template <class T, class... Ts>
  writer_answer<T> ask(Ts... xs) {
    std::optional<writer_answer<T>> got;
    self->request(w, caf::duration{10s}, xs...)
      .receive([&](T& x) { got = std::move(x); },
               [&](caf::error& e) {
                 auto f = to_failure(e);
                 got = f ? *f : failure{error_code::internal, sys.render(e)};
               });
    REQUIRE(got);
    return *got;
  }

  writer_answer<caf::ok_atom> write(const std::string& id, const std::string& bytes) {
    return ask<caf::ok_atom>(chunk_atom::value, id, test::make_chunk(bytes));
  }
  writer_answer<commit_result> commit(const std::string& id) {
    return ask<commit_result>(commit_atom::value, id);
  }

  bool tmp_empty() const { return std::filesystem::is_empty(data.layout.tmp); }
  std::optional<std::string> archive(const std::string& id) const {
    std::ifstream in(data.layout.archives / id, std::ios::binary);
    if (!in)
      return std::nullopt;
    return std::string{std::istreambuf_iterator<char>(in), {}};
  }
};

} // namespace

TEST_CASE("writer: chunks, then commit: the archive in place with its sha256", "[actors][writer]") {
  writer_fixture fx;
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("u1", "a")));
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("u1", "bc")));
  CHECK_FALSE(fx.tmp_empty());
  auto c = fx.commit("u1");
  REQUIRE(std::holds_alternative<commit_result>(c));
  CHECK(std::get<commit_result>(c).sha256 ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(std::get<commit_result>(c).size == 3);
  CHECK(fx.archive("u1") == "abc");
  CHECK(fx.tmp_empty());

  SECTION("remove drops the committed archive") {
    fx.self->send(fx.w, remove_atom::value, std::string{"u1"});
    // Answered after the remove was handled (same sender, in order).
    CHECK(std::holds_alternative<failure>(fx.commit("u1")));
    CHECK_FALSE(fx.archive("u1"));
  }
}

TEST_CASE("writer: discard drops the partial file; commit then finds nothing", "[actors][writer]") {
  writer_fixture fx;
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("u2", "partial")));
  fx.self->send(fx.w, discard_atom::value, std::string{"u2"});
  auto c = fx.commit("u2");
  REQUIRE(std::holds_alternative<failure>(c));
  CHECK(std::get<failure>(c).code == error_code::internal);
  CHECK(fx.tmp_empty());
  CHECK_FALSE(fx.archive("u2"));
}

TEST_CASE("writer: uploads are kept apart by id", "[actors][writer]") {
  writer_fixture fx;
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("x", "one")));
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("y", "two")));
  REQUIRE(std::holds_alternative<caf::ok_atom>(fx.write("x", "!")));
  REQUIRE(std::holds_alternative<commit_result>(fx.commit("y")));
  REQUIRE(std::holds_alternative<commit_result>(fx.commit("x")));
  CHECK(fx.archive("x") == "one!");
  CHECK(fx.archive("y") == "two");
}
