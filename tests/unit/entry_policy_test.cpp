#include "storage/entry_policy.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace portal;
using Catch::Matchers::Contains;
using storage::entry_policy;
using storage::entry_text;
using storage::entry_type;
using storage::tar_entry;

namespace {

tar_entry file(std::string name) {
  return {entry_type::file, {{std::move(name), ""}}, {}};
}
tar_entry dir(std::string name) {
  return {entry_type::directory, {{std::move(name), ""}}, {}};
}
tar_entry symlink_entry(std::string name, std::string target) {
  return {entry_type::symlink, {{std::move(name), ""}}, {{std::move(target), ""}}};
}
tar_entry hardlink(std::string name, std::string target) {
  return {entry_type::hardlink, {{std::move(name), ""}}, {{std::move(target), ""}}};
}
tar_entry of_type(entry_type t, std::string name) {
  return {t, {{std::move(name), ""}}, {}};
}

// Runs the policy over the members, then the end-of-walk check; returns the
// first refusal.
failure judge(const std::vector<tar_entry>& members) {
  entry_policy policy;
  for (const auto& m : members)
    if (auto refused = policy.check(m))
      return refused;
  return policy.check_symlink_chains();
}

void refused_as(const std::vector<tar_entry>& members, error_code code, const std::string& named) {
  auto f = judge(members);
  INFO(f.message);
  CHECK(f.code == code);
  CHECK_THAT(f.message, Contains(named));
}

} // namespace

TEST_CASE("unsafe names, types and links are refused and named", "[entry_policy]") {
  struct unsafe_case {
    const char* what;
    std::vector<tar_entry> members;
    std::string named;
  };
  std::vector<unsafe_case> cases = {
    {"absolute path", {file("/etc/passwd")}, "\"/etc/passwd\""},
    {"absolute dir", {dir("/tmp/")}, "/tmp"},
    {"leading ..", {file("../x")}, "\"../x\""},
    {".. inside the root", {dir("a/"), file("a/../b")}, "\"a/../b\""},
    {"trailing ..", {dir("a/..")}, "\"a/.."},
    {"empty name", {file("")}, "empty name"},
    {"0x01",
     {file("a\x01"
           "b")},
     "\"a\\x01b\""},
    {"0x1f", {file("a\x1f")}, "\"a\\x1f\""},
    {"0x7f", {file("del\x7f")}, "\"del\\x7f\""},
    {"newline", {file("line\nbreak")}, "\"line\\nbreak\""},
    {"tab", {file("t\tab")}, "\"t\\tab\""},
    {"the root replaced", {file("./")}, "replaces the archive root"},
    {"char device", {of_type(entry_type::char_device, "dev/null")}, "character device"},
    {"block device", {of_type(entry_type::block_device, "dev/sda")}, "block device"},
    {"FIFO", {of_type(entry_type::fifo, "pipe")}, "FIFO"},
    {"socket", {of_type(entry_type::socket, "sock")}, "socket"},
    {"unknown type", {of_type(entry_type::unknown, "m")}, "unsupported entry type"},
    {"absolute symlink target", {symlink_entry("l", "/etc")}, "\"l\""},
    {"symlink escaping", {dir("a/"), symlink_entry("a/link", "../../x")}, "\"a/link\""},
    {"symlink to the parent of the root", {symlink_entry("up", "..")}, "\"up\""},
    {"symlink escaping after descending", {symlink_entry("s", "a/b/../../../x")}, "\"s\""},
    {"symlink with a control character", {symlink_entry("s", "a\nb")}, "\"s\""},
    {"symlink with an empty target", {symlink_entry("s", "")}, "empty symlink target"},
    {"symlink without a target", {{entry_type::symlink, {{"s", ""}}, {}}}, "without a target"},
    {"hardlink absolute", {hardlink("h", "/etc/passwd")}, "\"h\""},
    {"hardlink ..", {hardlink("h", "../x")}, "\"h\""},
    {"hardlink .. inside", {dir("a/"), file("b"), hardlink("h", "a/../b")}, "\"h\""},
    {"hardlink to the root", {hardlink("h", ".")}, "archive root"},
    {"hardlink through a symlink", {symlink_entry("d", "sub"), hardlink("h", "d/f")}, "\"d\""},
    {"path through a symlink",
     {symlink_entry("a", "."), symlink_entry("a/a/b", "../../..")},
     "\"a/a/b\""},
    {"file through a symlink", {symlink_entry("d", "sub"), file("d/f")}, "\"d/f\""},
    {"symlink chain escaping",
     {dir("d/"), symlink_entry("d/l", "."), symlink_entry("d/s", "l/../..")},
     "\"d/s\""},
    {"symlink chain escaping, link defined later",
     {dir("d/"), symlink_entry("d/s", "l/../.."), symlink_entry("d/l", ".")},
     "\"d/s\""},
    {"directory entry over a symlink (tar keeps the symlink)",
     {symlink_entry("l", "."), dir("l/"), symlink_entry("l/l/l/s", "../../..")},
     "\"l/l/l/s\""},
    {"symlink loop", {symlink_entry("a", "b/x"), symlink_entry("b", "a/x")}, "symlink loop"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    refused_as(c.members, error_code::unsafe_entry, c.named);
  }
}

TEST_CASE("safe names and links are accepted", "[entry_policy]") {
  std::vector<tar_entry> members = {
    dir("./a/./b/"),
    file("a/f"),
    file("b"),
    symlink_entry("a/l", "../b"),     // stays inside: resolves to "b"
    symlink_entry("a/b/up", "../.."), // the root itself
    symlink_entry("here", "."),
    symlink_entry("dangling", "does/not/exist"), // inside, even if missing
    hardlink("h", "a/f"),
    dir("usr/lib/"),
    file("usr/lib/x.so.1"),
    symlink_entry("lib", "usr/lib"),
    dir("usr/bin/"),
    symlink_entry("usr/bin/x", "../../lib/x.so.1"), // through the "lib" symlink, inside
    file("n\xc3\xa4me with spaces"),
    file("raw \xe9 byte"),
    file("dots..."),
    file("..hidden"),
    symlink_entry("l2", "b"),
    symlink_entry("l2", "a/f"), // another target: both stay inside
    dir("deep/er/"),
    symlink_entry("deep/er/l", "../../lib/../usr/lib/x.so.1"),
    hardlink("a/h2", "a/l"), // a hardlink to a symlink that stays inside from there too
    dir("./"),               // the root as a directory entry
  };
  auto f = judge(members);
  INFO(f.message);
  CHECK_FALSE(f);
}

TEST_CASE("a hardlink to a symlink is that symlink at the hardlink's path", "[entry_policy]") {
  // GNU tar and bsdtar link the symlink itself: "h" becomes a symlink to
  // "../../x.txt", read from the root, outside.
  auto base = std::vector<tar_entry>{dir("a/"), dir("a/b/"), symlink_entry("a/b/s", "../../x.txt")};
  CHECK_FALSE(judge(base));

  SECTION("the issue's example") {
    auto members = base;
    members.push_back(hardlink("h", "a/b/s"));
    auto f = judge(members);
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"h\"") && Contains("hardlink to the symlink \"a/b/s\"") &&
                            Contains("\"../../x.txt\""));
  }
  SECTION("spelled differently") {
    auto members = base;
    members.push_back(hardlink("h", "./a//b/s"));
    CHECK(judge(members).code == error_code::unsafe_entry);
  }
  SECTION("at the same depth it stays inside, and later members are judged through it") {
    auto members = base;
    members.push_back(dir("c/"));
    members.push_back(dir("c/d/"));
    members.push_back(hardlink("c/d/h", "a/b/s")); // "../../x.txt" from c/d: inside
    CHECK_FALSE(judge(members));
    members.push_back(file("c/d/h/evil.txt"));
    auto f = judge(members);
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"c/d/h/evil.txt\"") && Contains("symlink \"c/d/h\""));
  }
  SECTION("a hardlink to that hardlink is the symlink too") {
    auto members = base;
    members.push_back(dir("c/"));
    members.push_back(dir("c/d/"));
    members.push_back(hardlink("c/d/h", "a/b/s"));
    members.push_back(hardlink("h2", "c/d/h"));
    auto f = judge(members);
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"h2\""));
  }
  SECTION("its target is resolved through the other symlinks at the end") {
    std::vector<tar_entry> members = {dir("d/"), symlink_entry("d/s", "l/.."), dir("e/"),
                                      hardlink("e/h", "d/s"), symlink_entry("e/l", "..")};
    // e/h -> l/.. from e: e/l is "..", so e/h resolves to the root's parent.
    auto f = judge(members);
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"e/h\""));
  }
}

TEST_CASE("a member with several names or targets is judged by each", "[entry_policy]") {
  SECTION("one unsafe name among safe ones is refused, naming its source") {
    tar_entry m{entry_type::file, {{"harmless", ""}, {"../evil", "pax path"}}, {}};
    auto f = judge({m});
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"../evil\" (pax path)"));
  }
  SECTION("one unsafe link target among safe ones is refused") {
    tar_entry m{entry_type::symlink, {{"s", ""}}, {{"inside", ""}, {"/etc", "GNU long link"}}};
    auto f = judge({m});
    CHECK(f.code == error_code::unsafe_entry);
    CHECK_THAT(f.message, Contains("\"s\"") && Contains("\"/etc\""));
    tar_entry h{entry_type::hardlink, {{"h", ""}}, {{"f", ""}, {"../f", "pax linkpath"}}};
    CHECK(judge({file("f"), h}).code == error_code::unsafe_entry);
  }
  SECTION("safe readings are all remembered: a path through either is refused") {
    tar_entry m{entry_type::symlink, {{"a", ""}, {"b", "GNU long name"}}, {{"sub", ""}}};
    CHECK_FALSE(judge({m}));
    CHECK(judge({m, file("a/x")}).code == error_code::unsafe_entry);
    CHECK(judge({m, file("b/x")}).code == error_code::unsafe_entry);
  }
  SECTION("every target a symlink may have is followed") {
    // "l" is "." to one reader, "sub" to another; through "." the chain
    // escapes.
    tar_entry l{entry_type::symlink, {{"d/l", ""}}, {{"sub", ""}, {".", "pax linkpath"}}};
    CHECK(judge({dir("d/"), l, symlink_entry("d/s", "l/../..")}).code == error_code::unsafe_entry);
    tar_entry safe{entry_type::symlink, {{"d/l", ""}}, {{"sub", ""}, {"other", "pax linkpath"}}};
    CHECK_FALSE(judge({dir("d/"), safe, symlink_entry("d/s", "l/..")}));
  }
  SECTION("no name at all") {
    CHECK(judge({tar_entry{entry_type::file, {}, {}}}).code == error_code::invalid_archive);
  }
}

TEST_CASE("remembered symlinks are bounded", "[entry_policy]") {
  entry_policy policy;
  std::string target(4000, 'x');
  failure f;
  for (int i = 0; i < 10000 && !f; ++i)
    f = policy.check(symlink_entry("l" + std::to_string(i), target));
  CHECK(f.code == error_code::archive_bomb);
}

TEST_CASE("long symlink chains are bounded", "[entry_policy]") {
  // l0 -> l1/x, l1 -> l2/x, ...: from l0, 41 expansions is a loop to the
  // kernel.
  std::vector<tar_entry> members;
  for (int i = 0; i < 42; ++i)
    members.push_back(symlink_entry("l" + std::to_string(i), "l" + std::to_string(i + 1) + "/x"));
  CHECK(judge(members).code == error_code::unsafe_entry);
  members.resize(30);
  CHECK_FALSE(judge(members));
}
