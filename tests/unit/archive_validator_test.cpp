// The archive_validator's protocol (actors/archive_validator.hpp), on the
// deterministic test scheduler: chunk -> ok or the refusal as a caf::error
// of ours, finish -> the totals; after a refusal every request gets it.
#include "actors/archive_validator.hpp"
#include "tests/unit/archive_corpus.hpp"
#include "tests/unit/coordinated_system.hpp"
#include "tests/unit/test_chunks.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <variant>

using namespace portal;

namespace {

// What the validator answered to one request: its value or our failure.
template <class T>
using answer = std::variant<T, failure>;

struct validator_fixture : test::coordinated_system {
  archive_validator_actor v;
  std::shared_ptr<actor_probe> probe = std::make_shared<actor_probe>();

  explicit validator_fixture(storage::archive_format f) {
    v = spawn_archive_validator(self.ptr(), probe, f, test::default_limits());
  }
  ~validator_fixture() {
    self->send_exit(v, caf::exit_reason::user_shutdown);
    run();
  }

  template <class T, class... Ts>
  answer<T> ask(Ts... xs) {
    auto pending = self->request(v, caf::infinite, xs...);
    run();
    std::optional<answer<T>> got;
    pending.receive([&](T& x) { got = std::move(x); },
                    [&](caf::error& e) {
                      auto f = to_failure(e);
                      got = f ? *f : failure{error_code::internal, sys.render(e)};
                    });
    REQUIRE(got);
    return *got;
  }

  answer<caf::ok_atom> feed(const chunk_ptr& c) { return ask<caf::ok_atom>(chunk_atom::value, c); }
  answer<validation_result> finish() { return ask<validation_result>(finish_atom::value); }
};

failure refusal(const answer<caf::ok_atom>& a) {
  REQUIRE(std::holds_alternative<failure>(a));
  return std::get<failure>(a);
}

} // namespace

TEST_CASE("validator: chunks of a good archive, then its totals", "[actors][validator]") {
  auto f = GENERATE(storage::archive_format::tar_gz, storage::archive_format::tar_zst);
  validator_fixture fx{f};
  auto tar =
    test::write_tar({{"d", '5'}, {"d/a.txt", '0', std::string(5000, 'a')}, {"d/b", '0', "b"}});
  for (auto& c : test::chunks_of(test::compress(f, tar), 700))
    REQUIRE(std::holds_alternative<caf::ok_atom>(fx.feed(c)));
  auto done = fx.finish();
  REQUIRE(std::holds_alternative<validation_result>(done));
  CHECK(std::get<validation_result>(done).entries == 3);
  CHECK(std::get<validation_result>(done).uncompressed_size == tar.size());
  // The probe counted every request.
  CHECK(fx.probe->messages.load() > 1);
}

TEST_CASE("validator: a refusal is the request's error, and stays", "[actors][validator]") {
  validator_fixture fx{storage::archive_format::tar_gz};

  SECTION("not gzip: unsupported_media_type on the first chunk") {
    auto f = refusal(fx.feed(test::make_chunk("this is no gzip stream at all")));
    CHECK(f.code == error_code::unsupported_media_type);
    CHECK(refusal(fx.feed(test::make_chunk("more"))).code == error_code::unsupported_media_type);
    auto done = fx.finish();
    REQUIRE(std::holds_alternative<failure>(done));
    CHECK(std::get<failure>(done).code == error_code::unsupported_media_type);
  }
  SECTION("an unsafe entry, named") {
    auto gz = test::compress(storage::archive_format::tar_gz,
                             test::write_tar({{"ok", '0', "x"}, {"../evil", '0', "y"}}));
    std::optional<failure> refused;
    for (auto& c : test::chunks_of(gz, 512)) {
      auto a = fx.feed(c);
      if (auto* f = std::get_if<failure>(&a)) {
        refused = *f;
        break;
      }
    }
    if (!refused) {
      auto done = fx.finish();
      REQUIRE(std::holds_alternative<failure>(done));
      refused = std::get<failure>(done);
    }
    CHECK(refused->code == error_code::unsafe_entry);
    CHECK_THAT(refused->message, Catch::Matchers::Contains("../evil"));
  }
  SECTION("a truncated stream: invalid_archive at the end") {
    auto gz = test::compress(storage::archive_format::tar_gz, test::write_tar({{"a", '0', "abc"}}));
    gz.resize(gz.size() / 2);
    REQUIRE(std::holds_alternative<caf::ok_atom>(fx.feed(test::make_chunk(gz))));
    auto done = fx.finish();
    REQUIRE(std::holds_alternative<failure>(done));
    CHECK(std::get<failure>(done).code == error_code::invalid_archive);
  }
}
