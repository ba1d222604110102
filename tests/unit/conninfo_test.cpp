#include "config/conninfo.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace portal;
using Catch::Matchers::Contains;

namespace {

const std::string pw = "s3cr3t-pw";

} // namespace

TEST_CASE("valid_conninfo: what libpq accepts", "[conninfo]") {
  for (const std::string good :
       {"postgresql://u:p@db:5432/x?sslmode=verify-full", "postgres://db/x", "host=db dbname=x",
        "host=db password='a b'", "", "postgresql:///x?host=/run/postgresql"}) {
    CAPTURE(good);
    CHECK(valid_conninfo(good));
  }
  // (a bad port or an empty host are libpq's to refuse at connect time)
  for (const std::string bad : {"host=db nonsense=1", "host db", "host='unterminated",
                                "postgresql://db/x?sslmode", "postgresql://db/x?nonsense=1"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_conninfo(bad));
  }
}

TEST_CASE("conninfo_value reads what libpq reads, URL or keywords", "[conninfo]") {
  CHECK(conninfo_value("postgresql://u@db/x?sslmode=verify-ca", "sslmode") == "verify-ca");
  CHECK(conninfo_value("host=db sslmode=require", "sslmode") == "require");
  CHECK(conninfo_value("postgresql://u@db:6432/x", "port") == "6432");
  CHECK(conninfo_value("host=db", "sslmode") == std::nullopt);
  CHECK(conninfo_value("host=db nonsense=1", "host") == std::nullopt); // invalid
  // percent-decoding and quoting are libpq's
  CHECK(conninfo_value("postgresql://u@db/x?application_name=a%20b", "application_name") == "a b");
  CHECK(conninfo_value("host=db application_name='a b'", "application_name") == "a b");
}

TEST_CASE("redact_conninfo hides every secret, keeps the rest", "[conninfo]") {
  SECTION("URL password") {
    auto out = redact_conninfo("postgresql://portal:" + pw + "@db:5432/x?sslmode=verify-full");
    CHECK_THAT(out, !Contains(pw));
    CHECK_THAT(out, Contains("password=[redacted]"));
    CHECK_THAT(out, Contains("host=db"));
    CHECK_THAT(out, Contains("sslmode=verify-full"));
  }
  SECTION("percent-encoded URL password") {
    auto out = redact_conninfo("postgresql://portal:a%40" + pw + "@db/x");
    CHECK_THAT(out, !Contains(pw));
  }
  SECTION("keyword passwords, sslpassword and a dbname holding a connection string") {
    auto out = redact_conninfo("host=db password='" + pw + " x' sslpassword=" + pw +
                               "2 dbname='host=other password=" + pw + "3'");
    CHECK_THAT(out, !Contains(pw));
    CHECK_THAT(out, Contains("host=db"));
  }
  SECTION("values with blanks and quotes come back quoted") {
    CHECK(redact_conninfo("host=db application_name='it\\'s a b'") ==
          "host=db application_name='it\\'s a b'");
  }
  SECTION("unparseable and empty") {
    CHECK(redact_conninfo("host='" + pw) == "[unparseable, redacted]");
    CHECK(redact_conninfo("").empty());
  }
}
