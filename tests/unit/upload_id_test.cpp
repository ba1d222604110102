#include "config/upload_id.hpp"

#include <catch2/catch.hpp>

#include <clocale>
#include <set>
#include <string>

using portal::new_upload_id;
using portal::valid_upload_id;

TEST_CASE("valid upload ids: [A-Za-z0-9_-], 1 to 64", "[upload_id]") {
  CHECK(valid_upload_id("a"));
  CHECK(valid_upload_id("a-b_C9"));
  CHECK(valid_upload_id(std::string(64, 'Z')));
  for (const std::string bad : {"", "../x", "a/b", "a.b", "sp ace", "a\\b", "a%2e", "a\nb", "a+b",
                                "\xe9t\xe9", "\xc3\xa9t\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_upload_id(bad));
  }
  CHECK_FALSE(valid_upload_id(std::string(65, 'a')));
  CHECK_FALSE(valid_upload_id(std::string("a\0b", 3)));
}

TEST_CASE("the upload id rule does not follow the locale", "[upload_id]") {
  // In a Latin-1 locale isalnum(0xe9) is true; the rule must not be. (Where
  // no such locale is installed, make one: localedef -i fr_FR -f ISO-8859-1
  // DIR/fr_FR.ISO-8859-1, and run with LOCPATH=DIR.)
  if (!std::setlocale(LC_CTYPE, "fr_FR.ISO-8859-1"))
    WARN("no fr_FR.ISO-8859-1 locale: checked in the C locale only");
  CHECK_FALSE(valid_upload_id("caf\xe9"));
  CHECK_FALSE(valid_upload_id("\xaa")); // ª, a letter in Latin-1
  std::setlocale(LC_CTYPE, "C");
}

TEST_CASE("new upload ids are valid and distinct", "[upload_id]") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto id = new_upload_id();
    CHECK(id.size() == 22);
    CHECK(valid_upload_id(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 100);
}
