// How the check works (SPEC §5.3, §11)
//
// Two libarchive readers run on one fiber:
//   layer 1: the expected decompression filter (gzip or zstd only) over the
//            "raw" format, which hands out the decompressed tar stream as data
//            blocks. Every byte of that stream passes through layer1_block(),
//            which counts it (uncompressed_size and the bomb limit are this
//            count), tracks where the last non-zero byte was (end-of-archive
//            check) and, for gzip, runs the CRC-32 (libarchive's gzip filter
//            never checks the trailer).
//   layer 2: the tar format alone, reading its input from layer 1. It walks
//            every header and skips the data.
// Keeping decompression out of layer 2 makes the byte count exact and lets a
// different inflater replace layer 1 without touching the tar walk.
//
// Push over pull: libarchive asks a read callback for input; ours yields the
// fiber back to feed(), which returns to the network side. feed() resumes the
// fiber with the next chunk. libarchive guarantees it no longer references a
// chunk once it calls the callback again, so a chunk is never retained after
// feed() returns.
//
// Policy decisions the SPEC leaves open:
// - End of archive: the tar stream must end with two 512-byte zero blocks
//   after the last member, followed by nothing but zero bytes (record
//   padding). Non-zero data after the marker is refused as invalid_archive:
//   "tar -i" would extract a second archive appended there, unchecked.
// - Bytes after the end of the compressed stream (after the last gzip member
//   or zstd frame) are refused as invalid_archive; multi-member gzip and
//   multi-frame zstd are accepted.
// - libarchive warnings: a header that only failed a character-set
//   conversion (a UTF-8 pax name in the C locale) is accepted; its raw bytes
//   are what libarchive reports, and they are checked. Every other warning
//   (malformed pax record, too many special headers, ...) is refused as
//   invalid_archive: libarchive then guessed, and an extractor may guess
//   differently. A bad header checksum (ARCHIVE_RETRY) is refused too.
// - Link targets are held to the name rules too (control characters refused),
//   and symlink targets are resolved through the archive's own symlinks at the
//   end of the walk, so "d/l -> ." plus "d/s -> l/../.." is caught; an entry
//   whose path runs through an earlier symlink of the archive is refused.
// - gzip integrity: libarchive's gzip filter never checks the member trailer,
//   so the CRC-32 and length are checked here against the last 8 bytes of the
//   stream. That is exact for a single-member stream (what gzip, pigz and tar
//   write); for a multi-member one only the last member's trailer is at hand
//   and its boundary is not visible through layer 1, so when neither field
//   matches the whole output the check is skipped (see check_trailer()). An
//   inflater of our own in layer 1 would check every member exactly.
// - Failures of our own (out of memory) are status 500, code
//   "internal_error": not the uploader's fault.
#include "storage/archive_check.hpp"

#include "config/crypto.hpp"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>
#include <zlib.h>

namespace portal::storage {

const char* to_string(archive_format f) {
  return f == archive_format::tar_gz ? "tar.gz" : "tar.zst";
}

namespace {

namespace ctx = boost::context;

// libarchive's tar and filter code needs a few KiB of stack; 256 KiB leaves
// ample room (also for sanitizer builds) and the guard page turns an overflow
// into a crash instead of silent corruption.
constexpr std::size_t walk_stack_size = 256 * 1024;
constexpr uint64_t tar_block = 512;

// Symlinks kept for the end-of-walk resolution: bounded so an archive of
// nothing but long symlinks cannot make the check itself a memory bomb.
constexpr std::size_t max_symlink_bytes = 16 * 1024 * 1024;
constexpr int max_link_expansions = 40; // as the kernel's ELOOP limit
constexpr uint64_t max_resolution_steps = 16 * 1024 * 1024;

archive_error refusal(int status, const char* code, std::string message) {
  return archive_error{status, code, std::move(message)};
}
archive_error invalid(std::string m) {
  return refusal(422, "invalid_archive", std::move(m));
}
archive_error bomb(std::string m) {
  return refusal(422, "archive_bomb", std::move(m));
}
archive_error internal(std::string m) {
  return refusal(500, "internal_error", std::move(m));
}

struct archive_free {
  void operator()(archive* a) const { archive_read_free(a); }
};
using archive_ptr = std::unique_ptr<archive, archive_free>;

// libarchive leaves some failures without a message (a gzip trailer cut
// short, for one).
std::string libarchive_message(archive* a,
                               const char* otherwise = "unexpected end or damaged data") {
  const char* m = a ? archive_error_string(a) : nullptr;
  return m && *m ? m : otherwise;
}

bool is_control(unsigned char c) {
  return (c >= 0x01 && c <= 0x1f) || c == 0x7f;
}

// Length of a valid UTF-8 sequence starting at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xc0) != 0x80)
      return 0;
  if (n == 3 && ((c == 0xe0 && byte(i + 1) < 0xa0) || (c == 0xed && byte(i + 1) >= 0xa0)))
    return 0; // overlong or surrogate
  if (n == 4 && ((c == 0xf0 && byte(i + 1) < 0x90) || (c == 0xf4 && byte(i + 1) >= 0x90)))
    return 0;
  return n;
}

// Names come from the uploader: the message shows control characters and
// invalid UTF-8 as escapes so it is readable, unambiguous and safe in JSON
// and logs. Very long names are cut.
std::string quote_entry(std::string_view name) {
  constexpr std::size_t max_shown = 200;
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < name.size();) {
    if (out.size() > max_shown) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(name[i]);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (std::size_t n = c >= 0x80 ? utf8_sequence(name, i) : 0) {
      out.append(name.substr(i, n));
      i += n;
      continue;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
    ++i;
  }
  return out + "\"";
}

archive_error unsafe(std::string_view entry, const std::string& why) {
  return refusal(422, "unsafe_entry", "unsafe entry " + quote_entry(entry) + ": " + why);
}

// Path components without the empty and "." ones; ".." is kept.
std::vector<std::string_view> components(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty()) {
    auto slash = p.find('/');
    auto c = p.substr(0, slash);
    if (!c.empty() && c != ".")
      out.push_back(c);
    if (slash == std::string_view::npos)
      break;
    p.remove_prefix(slash + 1);
  }
  return out;
}

std::string join(const std::vector<std::string_view>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i)
      out += '/';
    out.append(parts[i]);
  }
  return out;
}

bool has_dotdot(const std::vector<std::string_view>& parts) {
  return std::find(parts.begin(), parts.end(), "..") != parts.end();
}

// The SPEC §5.3 name rules, for an entry's name or a link's target.
std::optional<std::string> name_problem(std::string_view name, const char* what) {
  if (name.empty())
    return std::string("empty ") + what;
  for (unsigned char c : name)
    if (is_control(c))
      return std::string("control character in ") + what;
  return std::nullopt;
}

// Applies the SPEC §5.3 entry rules. Symlinks are remembered so that targets
// can be resolved through each other once every symlink is known.
class entry_policy {
public:
  std::optional<archive_error> check(archive_entry* e);
  std::optional<archive_error> check_symlink_chains() const;

private:
  struct symlink {
    std::string target;
  };
  std::optional<archive_error> check_symlink(std::string_view entry,
                                             const std::vector<std::string_view>& parts,
                                             std::string_view target) const;
  std::optional<archive_error> check_hardlink(std::string_view entry,
                                              std::string_view target) const;
  // The first proper prefix of `parts` that is a symlink of the archive.
  std::optional<std::string> through_symlink(const std::vector<std::string_view>& parts) const;
  enum class resolution { inside, outside, loop, too_costly };
  resolution resolve(const std::vector<std::string_view>& dir, std::string_view target,
                     uint64_t& steps) const;

  std::map<std::string, symlink, std::less<>> symlinks_;
  std::unordered_set<std::size_t> symlink_hashes_; // cheap prefix filter
  std::size_t symlink_bytes_ = 0;
};

std::size_t prefix_hash(std::size_t h, std::string_view component, bool first) {
  // FNV-1a over "a/b/c", extended one component at a time, so checking every
  // prefix of a deep path stays linear in its length.
  constexpr std::size_t prime = sizeof(std::size_t) == 8 ? 1099511628211ULL : 16777619U;
  auto mix = [&](unsigned char c) { h = (h ^ c) * prime; };
  if (!first)
    mix('/');
  for (unsigned char c : component)
    mix(c);
  return h;
}
constexpr std::size_t hash_seed = sizeof(std::size_t) == 8 ? 14695981039346656037ULL : 2166136261U;

std::optional<std::string>
entry_policy::through_symlink(const std::vector<std::string_view>& parts) const {
  if (symlinks_.empty())
    return std::nullopt;
  std::size_t h = hash_seed;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    h = prefix_hash(h, parts[i], i == 0);
    if (!symlink_hashes_.count(h))
      continue;
    std::string prefix = join(parts, i + 1);
    if (symlinks_.count(prefix))
      return prefix;
  }
  return std::nullopt;
}

std::optional<archive_error> entry_policy::check(archive_entry* e) {
  // With the C locale, libarchive keeps the raw header bytes as the
  // multibyte name even when they are not convertible; the UTF-8 form exists
  // when it could be derived. Both must pass; the multibyte one is the one an
  // extractor on this platform writes.
  const char* mbs = archive_entry_pathname(e);
  const char* utf8 = archive_entry_pathname_utf8(e);
  if (!mbs && !utf8)
    return invalid("an entry has no readable name");
  std::string_view name = mbs ? mbs : utf8;
  for (const char* form : {mbs, utf8}) {
    if (!form)
      continue;
    std::string_view n = form;
    if (auto why = name_problem(n, "name"))
      return unsafe(n, *why);
    if (n.front() == '/')
      return unsafe(n, "absolute path");
    if (has_dotdot(components(n)))
      return unsafe(n, "\"..\" path component");
  }

  const char* hardlink = archive_entry_hardlink(e);
  const char* hardlink_utf8 = archive_entry_hardlink_utf8(e);
  auto type = archive_entry_filetype(e);
  // libarchive's tar reader gives a hardlink ('1') no file type.
  if (type == 0 && (hardlink || hardlink_utf8))
    type = AE_IFREG;
  switch (type) {
  case AE_IFREG:
  case AE_IFDIR:
  case AE_IFLNK:
    break;
  case AE_IFCHR:
    return unsafe(name, "character device");
  case AE_IFBLK:
    return unsafe(name, "block device");
  case AE_IFIFO:
    return unsafe(name, "FIFO");
  case AE_IFSOCK:
    return unsafe(name, "socket");
  default:
    return unsafe(name, "unsupported entry type");
  }

  auto parts = components(name);
  if (parts.empty() && type != AE_IFDIR)
    return unsafe(name, "replaces the archive root");
  if (auto link = through_symlink(parts))
    return unsafe(name, "path goes through the symlink " + quote_entry(*link));

  for (const char* target : {hardlink, hardlink_utf8})
    if (target)
      if (auto refused = check_hardlink(name, target))
        return refused;

  if (type != AE_IFLNK)
    return std::nullopt;

  const char* target = archive_entry_symlink(e);
  const char* target_utf8 = archive_entry_symlink_utf8(e);
  if (!target && !target_utf8)
    return unsafe(name, "symlink without a target");
  for (const char* t : {target, target_utf8})
    if (t)
      if (auto refused = check_symlink(name, parts, t))
        return refused;

  std::string_view kept = target ? target : target_utf8;
  std::string key = join(parts, parts.size());
  // A path that was a symlink stays one for the checks: an extractor may keep
  // it when a later entry of the same name arrives (GNU tar keeps a symlink to
  // a directory when it meets a directory entry there).
  auto [it, added] = symlinks_.try_emplace(std::move(key));
  if (added) {
    symlink_bytes_ += it->first.size();
    std::size_t h = hash_seed;
    for (std::size_t i = 0; i < parts.size(); ++i)
      h = prefix_hash(h, parts[i], i == 0);
    symlink_hashes_.insert(h);
  } else {
    symlink_bytes_ -= it->second.target.size();
  }
  it->second.target.assign(kept);
  symlink_bytes_ += kept.size();
  if (symlink_bytes_ > max_symlink_bytes)
    return bomb("too many or too long symlinks to verify");
  return std::nullopt;
}

std::optional<archive_error> entry_policy::check_symlink(std::string_view entry,
                                                         const std::vector<std::string_view>& parts,
                                                         std::string_view target) const {
  if (auto why = name_problem(target, "symlink target"))
    return unsafe(entry, *why);
  if (parts.empty())
    return unsafe(entry, "symlink replaces the archive root");
  if (target.front() == '/')
    return unsafe(entry, "absolute symlink target " + quote_entry(target));
  // Lexically, from the symlink's own directory; chains through other
  // symlinks are resolved in check_symlink_chains().
  std::size_t depth = parts.size() - 1;
  for (auto c : components(target)) {
    if (c != "..")
      ++depth;
    else if (depth-- == 0)
      return unsafe(entry, "symlink target " + quote_entry(target) + " points outside the archive");
  }
  return std::nullopt;
}

std::optional<archive_error> entry_policy::check_hardlink(std::string_view entry,
                                                          std::string_view target) const {
  if (auto why = name_problem(target, "hardlink target"))
    return unsafe(entry, *why);
  if (target.front() == '/')
    return unsafe(entry, "absolute hardlink target " + quote_entry(target));
  auto parts = components(target);
  if (has_dotdot(parts))
    return unsafe(entry, "hardlink target " + quote_entry(target) + " has a \"..\" component");
  if (parts.empty())
    return unsafe(entry, "hardlink to the archive root");
  if (auto link = through_symlink(parts))
    return unsafe(entry, "hardlink target goes through the symlink " + quote_entry(*link));
  return std::nullopt;
}

// Follows `target` from `dir` as the kernel would once everything is
// extracted, expanding the archive's symlinks met on the way (not the last
// component: a symlink there is checked on its own).
entry_policy::resolution entry_policy::resolve(const std::vector<std::string_view>& dir,
                                               std::string_view target, uint64_t& steps) const {
  std::vector<std::string> path(dir.begin(), dir.end());
  std::vector<std::size_t> hashes; // hashes[i]: prefix_hash of path[0..i]
  for (std::size_t i = 0; i < path.size(); ++i)
    hashes.push_back(prefix_hash(i ? hashes.back() : hash_seed, path[i], i == 0));
  std::vector<std::string> todo; // reversed: the next component at the back
  auto queue = [&](std::string_view t) {
    auto parts = components(t);
    for (auto p = parts.rbegin(); p != parts.rend(); ++p)
      todo.emplace_back(*p);
  };
  queue(target);
  int expansions = 0;
  while (!todo.empty()) {
    if (++steps > max_resolution_steps)
      return resolution::too_costly;
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c == "..") {
      if (path.empty())
        return resolution::outside;
      path.pop_back();
      hashes.pop_back();
      continue;
    }
    hashes.push_back(prefix_hash(path.empty() ? hash_seed : hashes.back(), c, path.empty()));
    path.push_back(std::move(c));
    if (todo.empty() || !symlink_hashes_.count(hashes.back()))
      continue;
    std::string joined;
    for (const auto& p : path)
      joined += (joined.empty() ? "" : "/") + p;
    steps += joined.size() / 16;
    auto it = symlinks_.find(joined);
    if (it == symlinks_.end())
      continue;
    if (++expansions > max_link_expansions)
      return resolution::loop;
    if (it->second.target.front() == '/')
      return resolution::outside;
    path.pop_back();
    hashes.pop_back();
    queue(it->second.target);
  }
  return resolution::inside;
}

std::optional<archive_error> entry_policy::check_symlink_chains() const {
  uint64_t steps = 0;
  for (const auto& [path, link] : symlinks_) {
    auto parts = components(path);
    parts.pop_back();
    switch (resolve(parts, link.target, steps)) {
    case resolution::inside:
      break;
    case resolution::outside:
      return unsafe(path, "symlink target " + quote_entry(link.target) +
                            " resolves outside the archive through other symlinks");
    case resolution::loop:
      return unsafe(path, "symlink target " + quote_entry(link.target) + " is a symlink loop");
    case resolution::too_costly:
      return bomb("symlinks too deeply chained to verify");
    }
  }
  return std::nullopt;
}

uint64_t round_up(uint64_t n) {
  return (n + tar_block - 1) / tar_block * tar_block;
}

// Offset just past the last non-zero byte of `data`, relative to it; 0 if
// all zero. Scans from the end, so real data costs almost nothing.
std::size_t nonzero_end(const unsigned char* data, std::size_t n) {
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, data + n - 8, 8);
    if (w != 0)
      break;
    n -= 8;
  }
  while (n > 0 && data[n - 1] == 0)
    --n;
  return n;
}

} // namespace

struct archive_check::impl {
  impl(archive_format f, archive_limits l) : format(f), limits(l) {}
  ~impl();

  std::optional<archive_error> feed(const char* data, std::size_t size);
  std::variant<archive_summary, archive_error> finish();

private:
  std::optional<archive_error> check_magic(const char*& data, std::size_t& size);
  void push(const char* data, std::size_t size);
  void resume();
  void run() noexcept;
  void walk();
  bool walk_entries(archive* tar);
  bool finish_stream();
  void fail(archive_error e) {
    if (!error)
      error = std::move(e);
  }
  bool stopped() const { return error.has_value() || aborting; }
  bool layer1_block(const void* data, std::size_t size);
  void check_trailer();
  const char* filter_name() const { return format == archive_format::tar_gz ? "gzip" : "zstd"; }

  static la_ssize_t read_compressed(archive* a, void* self, const void** buffer) noexcept;
  static la_ssize_t read_decompressed(archive* a, void* self, const void** buffer) noexcept;

  const archive_format format;
  const archive_limits limits;
  std::optional<archive_error> error;
  archive_summary summary;

  // The first bytes, held until they prove the format (they may arrive one
  // per feed()); they then go to libarchive from here.
  unsigned char magic[4] = {};
  std::size_t magic_have = 0;
  bool magic_ok = false;
  bool finished = false;

  // The chunk feed() offers; libarchive takes it in read_compressed().
  const char* offered = nullptr;
  std::size_t offered_size = 0;
  bool input_ended = false;   // finish(): the callback reports EOF
  bool aborting = false;      // destructor: the callback reports failure
  uint64_t handed = 0;        // compressed bytes given to libarchive
  unsigned char tail[8] = {}; // the last 8 of them: the gzip trailer

  ctx::fiber walker; // the suspended walk; empty before it starts and after it ends
  ctx::fiber caller; // inside the walk: the feed()/finish() side to yield to
  bool walk_started = false;
  bool walk_ended = false;

  archive* layer1 = nullptr;
  bool layer1_eof = false;
  uint64_t total = 0;        // decompressed bytes
  uint64_t last_nonzero = 0; // offset just past the last non-zero decompressed byte
  uLong crc = crc32(0L, Z_NULL, 0);
  // From the tar walk's end: where the end-of-archive marker may start, and
  // the latest offset it may start at (see walk_entries()).
  uint64_t marker_floor = 0;
  uint64_t marker_limit = 0;
  entry_policy policy;
};

archive_check::impl::~impl() {
  // Never destroy a suspended fiber: Boost would unwind it with an exception
  // through libarchive's C frames. Let the walk fail its read and return.
  aborting = true;
  while (walker)
    walker = std::move(walker).resume();
}

std::optional<archive_error> archive_check::impl::feed(const char* data, std::size_t size) {
  if (error)
    return error;
  if (finished) {
    fail(internal("feed() after finish()"));
    return error;
  }
  if (size == 0)
    return std::nullopt;
  try {
    if (!magic_ok) {
      if (auto refused = check_magic(data, size)) {
        fail(std::move(*refused));
        return error;
      }
      if (!magic_ok)
        return std::nullopt;
      push(reinterpret_cast<const char*>(magic), magic_have);
    }
    if (size > 0 && !error)
      push(data, size);
  } catch (const std::exception& e) {
    fail(internal(std::string("archive check: ") + e.what()));
  }
  return error;
}

std::optional<archive_error> archive_check::impl::check_magic(const char*& data,
                                                              std::size_t& size) {
  static const unsigned char gzip_magic[] = {0x1f, 0x8b};
  static const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
  bool gz = format == archive_format::tar_gz;
  const unsigned char* want = gz ? gzip_magic : zstd_magic;
  std::size_t need = gz ? sizeof gzip_magic : sizeof zstd_magic;
  std::size_t take = std::min(need - magic_have, size);
  std::memcpy(magic + magic_have, data, take);
  magic_have += take;
  data += take;
  size -= take;
  // Refuse at the first wrong byte: no need to wait for the rest.
  if (std::memcmp(magic, want, magic_have) != 0) {
    std::string got;
    for (std::size_t i = 0; i < magic_have; ++i)
      got += (i ? " " : "") + crypto::to_hex(magic + i, 1);
    return refusal(415, "unsupported_media_type",
                   std::string("expected ") +
                     (gz ? "gzip data (1f 8b)" : "zstd data (28 b5 2f fd)") + " for a ." +
                     to_string(format) + " upload, but it starts with " + got);
  }
  magic_ok = magic_have == need;
  return std::nullopt;
}

void archive_check::impl::push(const char* data, std::size_t size) {
  if (walk_ended) {
    // The compressed stream already ended (the walk saw its last member and
    // frame); anything more is trailing data.
    fail(invalid(std::string("data after the end of the ") + filter_name() + " stream"));
    return;
  }
  offered = data;
  offered_size = size;
  // Returns once libarchive asks for more (so it has let go of this chunk)
  // or the walk has ended.
  resume();
  if (walk_ended && offered_size > 0)
    fail(invalid(std::string("data after the end of the ") + filter_name() + " stream"));
  offered = nullptr;
  offered_size = 0;
}

void archive_check::impl::resume() {
  if (!walk_started) {
    walk_started = true;
    walker = ctx::fiber(std::allocator_arg, ctx::protected_fixedsize_stack(walk_stack_size),
                        [this](ctx::fiber&& c) {
                          caller = std::move(c);
                          run();
                          walk_ended = true;
                          return std::move(caller);
                        });
  }
  if (walker)
    walker = std::move(walker).resume();
}

std::variant<archive_summary, archive_error> archive_check::impl::finish() {
  if (!error && !finished) {
    finished = true;
    try {
      if (!magic_ok) {
        fail(refusal(415, "unsupported_media_type",
                     std::string("expected ") +
                       (format == archive_format::tar_gz ? "gzip" : "zstd") + " data for a ." +
                       to_string(format) + " upload, but the body is too short (" +
                       std::to_string(magic_have) + " bytes)"));
      } else {
        input_ended = true;
        resume();
        if (!walk_ended && !error)
          fail(internal("archive check: the walk did not end at the end of the stream"));
      }
    } catch (const std::exception& e) {
      fail(internal(std::string("archive check: ") + e.what()));
    }
  }
  if (error)
    return *error;
  return summary;
}

la_ssize_t archive_check::impl::read_compressed(archive* a, void* self,
                                                const void** buffer) noexcept {
  auto* s = static_cast<impl*>(self);
  // Being called again means libarchive is done with the previous chunk:
  // yield so feed() can return, and come back with the next one.
  while (s->offered_size == 0 && !s->input_ended && !s->aborting)
    s->caller = std::move(s->caller).resume();
  if (s->aborting) {
    archive_set_error(a, ECANCELED, "archive check abandoned");
    return ARCHIVE_FATAL;
  }
  if (s->offered_size == 0)
    return 0; // end of the stream
  *buffer = s->offered;
  auto n = s->offered_size;
  s->offered_size = 0;
  s->handed += n;
  const auto* bytes = reinterpret_cast<const unsigned char*>(s->offered);
  if (n >= 8) {
    std::memcpy(s->tail, bytes + n - 8, 8);
  } else {
    std::memmove(s->tail, s->tail + n, 8 - n);
    std::memcpy(s->tail + 8 - n, bytes, n);
  }
  return static_cast<la_ssize_t>(n);
}

// Every decompressed byte passes here exactly once, in order.
bool archive_check::impl::layer1_block(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (std::size_t end = nonzero_end(bytes, size))
    last_nonzero = total + end;
  total += size;
  if (total > limits.max_uncompressed) {
    fail(bomb("the archive decompresses to more than " + std::to_string(limits.max_uncompressed) +
              " bytes"));
    return false;
  }
  if (format == archive_format::tar_gz)
    crc = crc32(crc, bytes, static_cast<uInt>(size));
  return true;
}

la_ssize_t archive_check::impl::read_decompressed(archive* a, void* self,
                                                  const void** buffer) noexcept {
  auto* s = static_cast<impl*>(self);
  for (;;) {
    if (s->layer1_eof)
      return 0;
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(s->layer1, &block, &size, &offset);
    if (r == ARCHIVE_EOF) {
      s->layer1_eof = true;
      return 0;
    }
    if (r != ARCHIVE_OK) {
      if (!s->aborting)
        s->fail(invalid(std::string("truncated or corrupt ") + s->filter_name() +
                        " stream: " + libarchive_message(s->layer1)));
      archive_set_error(a, EIO, "decompression failed");
      return ARCHIVE_FATAL;
    }
    if (size == 0)
      continue;
    if (!s->layer1_block(block, size)) {
      archive_set_error(a, EFBIG, "decompressed size limit");
      return ARCHIVE_FATAL;
    }
    *buffer = block;
    return static_cast<la_ssize_t>(size);
  }
}

void archive_check::impl::run() noexcept {
  try {
    walk();
  } catch (const std::bad_alloc&) {
    fail(internal("archive check: out of memory"));
  } catch (const std::exception& e) {
    fail(internal(std::string("archive check: ") + e.what()));
  } catch (...) {
    fail(internal("archive check: unexpected failure"));
  }
  layer1 = nullptr;
}

void archive_check::impl::walk() {
  archive_ptr compressed{archive_read_new()};
  if (!compressed)
    throw std::bad_alloc();
  bool gz = format == archive_format::tar_gz;
  // Anything but ARCHIVE_OK means libarchive would run an external program.
  if ((gz ? archive_read_support_filter_gzip(compressed.get())
          : archive_read_support_filter_zstd(compressed.get())) != ARCHIVE_OK ||
      archive_read_support_format_raw(compressed.get()) != ARCHIVE_OK) {
    fail(internal(std::string("libarchive has no built-in ") + filter_name() + " support"));
    return;
  }
  // Opening already decompresses (libarchive bids for nested filters on the
  // output), so damage near the start surfaces here.
  int r = archive_read_open(compressed.get(), this, nullptr, &impl::read_compressed, nullptr);
  archive_entry* entry = nullptr;
  if (!stopped() && r == ARCHIVE_OK)
    r = archive_read_next_header(compressed.get(), &entry);
  if (stopped())
    return;
  if (r != ARCHIVE_OK) {
    std::string m = libarchive_message(compressed.get());
    // "raw" bids on any non-empty input, so this means no data at all.
    if (m == "Unrecognized archive format")
      fail(
        invalid(std::string("the ") + filter_name() + " stream holds no data: not a tar archive"));
    else
      fail(invalid(std::string("truncated or corrupt ") + filter_name() + " stream: " + m));
    return;
  }
  // The filter may have declined to bid (reserved header flags, a stream cut
  // inside its header): "raw" then hands out the compressed bytes themselves.
  int want = gz ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_ZSTD;
  if (archive_filter_count(compressed.get()) < 2 ||
      archive_filter_code(compressed.get(), 0) != want) {
    fail(
      invalid(std::string("not a valid ") + filter_name() + " stream (bad or truncated header)"));
    return;
  }
  layer1 = compressed.get();

  archive_ptr tar{archive_read_new()};
  if (!tar)
    throw std::bad_alloc();
  // No skip callback: skipped data must still flow through layer 2's reads so
  // every byte is decompressed, counted and checked.
  archive_read_support_format_tar(tar.get());
  r = archive_read_open(tar.get(), this, nullptr, &impl::read_decompressed, nullptr);
  if (stopped())
    return;
  if (r != ARCHIVE_OK) {
    fail(invalid("not a tar archive: " + libarchive_message(tar.get())));
    return;
  }
  if (!walk_entries(tar.get()))
    return;
  if (!finish_stream())
    return;
  summary.uncompressed_size = total;
}

bool archive_check::impl::walk_entries(archive* tar) {
  // Offset of the header after the last member: the end-of-archive marker
  // must start there or later (after trailing global headers).
  uint64_t after_last = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(tar, &entry);
    if (stopped())
      return false;
    if (r == ARCHIVE_EOF)
      break;
    if (r == ARCHIVE_WARN) {
      std::string m = libarchive_message(tar);
      if (m.find("can't be converted") == std::string::npos) {
        fail(invalid("questionable tar header after entry " + std::to_string(summary.entries) +
                     ": " + m));
        return false;
      }
    } else if (r == ARCHIVE_RETRY) {
      fail(invalid("damaged tar header (bad checksum) after entry " +
                   std::to_string(summary.entries)));
      return false;
    } else if (r != ARCHIVE_OK) {
      if (summary.entries == 0 && ::archive_format(tar) == 0)
        fail(invalid("not a tar archive: " + libarchive_message(tar)));
      else
        fail(invalid("damaged tar archive after entry " + std::to_string(summary.entries) + ": " +
                     libarchive_message(tar)));
      return false;
    }
    if (++summary.entries > limits.max_entries) {
      fail(bomb("the archive has more than " + std::to_string(limits.max_entries) + " entries"));
      return false;
    }
    if (auto refused = policy.check(entry)) {
      fail(std::move(*refused));
      return false;
    }
    r = archive_read_data_skip(tar);
    if (stopped())
      return false;
    if (r != ARCHIVE_OK) {
      fail(invalid("damaged tar archive in entry " + std::to_string(summary.entries) + ": " +
                   libarchive_message(tar)));
      return false;
    }
    after_last = static_cast<uint64_t>(archive_filter_bytes(tar, 0));
  }
  if (auto refused = policy.check_symlink_chains()) {
    fail(std::move(*refused));
    return false;
  }

  // The end-of-archive marker. libarchive stops at the first zero block X
  // and consumes one or two blocks: its position q is X+512 or X+1024 (or
  // the end of the data when there was no zero block at all). So X is the
  // later of q-1024 and everything before it that is not zero: the last
  // member's data, a trailing global header, or garbage.
  uint64_t q = static_cast<uint64_t>(archive_filter_bytes(tar, 0));
  uint64_t x0 = std::max(after_last, q >= 2 * tar_block ? q - 2 * tar_block : 0);
  if (q < tar_block || x0 > q - tar_block) {
    fail(invalid("missing end-of-archive marker (two zero blocks after the last entry)"));
    return false;
  }
  marker_limit = q - tar_block;
  marker_floor = x0;
  return true;
}

bool archive_check::impl::finish_stream() {
  auto trailing = [&] {
    if (round_up(last_nonzero) > marker_limit) {
      fail(invalid("data after the end-of-archive marker"));
      return true;
    }
    return false;
  };
  if (trailing())
    return false;
  // Read the decompressed stream to its end: record padding after the marker
  // counts (SPEC §11), and must be zeros.
  while (!layer1_eof) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(layer1, &block, &size, &offset);
    if (stopped())
      return false;
    if (r == ARCHIVE_EOF) {
      layer1_eof = true;
      break;
    }
    if (r != ARCHIVE_OK) {
      fail(invalid(std::string("truncated or corrupt ") + filter_name() +
                   " stream: " + libarchive_message(layer1)));
      return false;
    }
    if (!layer1_block(block, size) || trailing())
      return false;
  }
  uint64_t marker = std::max(marker_floor, round_up(last_nonzero));
  if (total < marker + 2 * tar_block) {
    fail(invalid("missing end-of-archive marker (two zero blocks after the last entry)"));
    return false;
  }

  auto consumed = archive_filter_bytes(layer1, -1);
  if (consumed >= 0 && static_cast<uint64_t>(consumed) < handed) {
    fail(invalid(std::string("data after the end of the ") + filter_name() + " stream"));
    return false;
  }
  if (format == archive_format::tar_gz)
    check_trailer();
  return !error;
}

// libarchive's gzip filter ignores the member trailer (CRC-32 and length of
// the decompressed data), so corruption that still inflates would pass. The
// stream's last 8 bytes are the last member's trailer. For the usual single
// member it must match the whole output. A multi-member stream's last
// trailer covers only its last member, whose boundary layer 1 does not
// expose: there the check is skipped, which is recognisable because then
// neither field matches the whole output.
void archive_check::impl::check_trailer() {
  auto le32 = [](const unsigned char* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  };
  bool crc_ok = le32(tail) == static_cast<uint32_t>(crc);
  bool size_ok = le32(tail + 4) == static_cast<uint32_t>(total);
  if (crc_ok != size_ok)
    fail(invalid(std::string("corrupt gzip stream: the trailer's ") +
                 (crc_ok ? "length" : "CRC-32") + " does not match the data"));
}

archive_check::archive_check(archive_format expected, archive_limits limits)
  : impl_(std::make_unique<impl>(expected, limits)) {}

archive_check::~archive_check() = default;

std::optional<archive_error> archive_check::feed(const char* data, std::size_t size) {
  return impl_->feed(data, size);
}

std::variant<archive_summary, archive_error> archive_check::finish() {
  return impl_->finish();
}

} // namespace portal::storage
