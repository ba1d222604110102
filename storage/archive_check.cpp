// How the check runs (SPEC §5.3, §11)
//
// feed() hands the compressed bytes to the compressed_stream, which hands
// every decompressed block, in order, to on_block(): tar_headers reads it
// first, then libarchive's tar reader, on its fiber, takes it through its read
// callback. The callback yields the fiber back to on_block() when it asks
// for the next block, which means libarchive is done with the previous one:
// no block is referenced after feed() returns. The walk reads every member's
// header (and skips its data through the same callback: no skip callback, so
// libarchive's offsets count every byte), matches it with what tar_headers
// read at the same offset, and asks the entry_policy.
//
// Decisions the SPEC leaves open:
// - libarchive warnings: a header that only failed a character-set
//   conversion (a UTF-8 pax name in the C locale) is accepted; its raw bytes
//   are what libarchive reports, and they are checked. Every other warning
//   (malformed pax record, too many special headers, ...) is refused as
//   invalid_archive: libarchive then guessed, and an extractor may guess
//   differently. A bad header checksum (ARCHIVE_RETRY) is refused too.
// - A member libarchive reports where tar_headers read none (the two
//   readings of the layout differ) is refused as invalid_archive.
// - Failures of our own (out of memory) are code internal: not the
//   uploader's fault.
#include "storage/archive_check.hpp"

#include "config/utf8_text.hpp"
#include "storage/compressed_stream.hpp"
#include "storage/entry_policy.hpp"
#include "storage/tar_headers.hpp"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <new>
#include <string>
#include <utility>

namespace portal::storage {

namespace {

namespace ctx = boost::context;

// libarchive's tar code needs a few KiB of stack; 256 KiB leaves ample room
// (also for sanitizer builds) and the guard page turns an overflow into a
// crash instead of silent corruption.
constexpr std::size_t walk_stack_size = std::size_t{256} * 1024;
constexpr uint64_t tar_block = 512;

failure check_invalid(const std::string& m) {
  return {error_code::invalid_archive, m};
}
failure internal(const std::string& m) {
  return {error_code::internal, m};
}

struct archive_free {
  void operator()(archive* a) const { archive_read_free(a); }
};
using archive_ptr = std::unique_ptr<archive, archive_free>;

// libarchive leaves some failures without a message.
std::string libarchive_message(archive* a) {
  const char* m = a ? archive_error_string(a) : nullptr;
  return m && *m ? utf8_text(m) : "unexpected end or damaged data";
}

entry_type type_of(archive_entry* e) {
  if (archive_entry_hardlink(e) || archive_entry_hardlink_utf8(e))
    return entry_type::hardlink;
  switch (archive_entry_filetype(e)) {
  case AE_IFREG:
    return entry_type::file;
  case AE_IFDIR:
    return entry_type::directory;
  case AE_IFLNK:
    return entry_type::symlink;
  case AE_IFCHR:
    return entry_type::char_device;
  case AE_IFBLK:
    return entry_type::block_device;
  case AE_IFIFO:
    return entry_type::fifo;
  case AE_IFSOCK:
    return entry_type::socket;
  default:
    return entry_type::unknown;
  }
}

void add_distinct(std::vector<entry_text>& to, entry_text t) {
  for (const auto& have : to)
    if (have.text == t.text)
      return;
  to.push_back(std::move(t));
}

// The member as every reader may see it: libarchive's reading first (with
// the C locale its multibyte name is the raw header bytes; the UTF-8 form
// exists when it could be derived), then every other source in the headers.
tar_entry entry_of(archive_entry* e, member_headers&& raw) {
  tar_entry out;
  out.type = type_of(e);
  for (const char* name : {archive_entry_pathname(e), archive_entry_pathname_utf8(e)})
    if (name)
      add_distinct(out.names, {name, ""});
  for (auto& n : raw.names)
    add_distinct(out.names, std::move(n));
  const char* link = nullptr;
  const char* link_utf8 = nullptr;
  if (out.type == entry_type::hardlink) {
    link = archive_entry_hardlink(e);
    link_utf8 = archive_entry_hardlink_utf8(e);
  } else if (out.type == entry_type::symlink) {
    link = archive_entry_symlink(e);
    link_utf8 = archive_entry_symlink_utf8(e);
  } else {
    return out;
  }
  for (const char* l : {link, link_utf8})
    if (l)
      add_distinct(out.links, {l, ""});
  for (auto& l : raw.links)
    add_distinct(out.links, std::move(l));
  return out;
}

} // namespace

struct archive_check::impl {
  impl(archive_format f, archive_limits l) : limits(l), stream(f, l.max_uncompressed, l.inflater) {}
  ~impl();
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  failure feed(const char* data, std::size_t size);
  std::variant<archive_summary, failure> finish();

private:
  bool on_block(const unsigned char* data, std::size_t size);
  void resume();
  void run() noexcept;
  void walk();
  bool walk_entries(archive* tar);
  void fail(failure f) {
    if (!error)
      error = std::move(f);
  }
  bool stopped() const { return static_cast<bool>(error) || aborting; }

  static la_ssize_t read_tar(archive* a, void* self, const void** buffer) noexcept;

  const archive_limits limits;
  failure error;
  archive_summary summary;
  bool finished = false;

  compressed_stream stream;
  tar_headers headers;
  entry_policy policy;

  // The decompressed block on offer; libarchive takes it in read_tar().
  const unsigned char* offered = nullptr;
  std::size_t offered_size = 0;
  bool input_ended = false; // finish(): the callback reports EOF
  bool aborting = false;    // destructor: the callback reports failure

  ctx::fiber walker; // the suspended walk; empty before it starts and after it ends
  ctx::fiber caller; // inside the walk: the feed()/finish() side to yield to
  bool walk_started = false;
  bool walk_ended = false;
};

archive_check::impl::~impl() {
  // Never destroy a suspended fiber: Boost would unwind it with an exception
  // through libarchive's C frames. Let the walk fail its read and return.
  aborting = true;
  while (walker)
    walker = std::move(walker).resume();
}

failure archive_check::impl::feed(const char* data, std::size_t size) {
  if (error)
    return error;
  if (finished) {
    fail(internal("feed() after finish()"));
    return error;
  }
  try {
    if (auto refused = stream.push(data, size, [this](const unsigned char* block, std::size_t n) {
          return on_block(block, n);
        }))
      fail(std::move(refused));
  } catch (const std::exception& e) {
    fail(internal(std::string("archive check: ") + e.what()));
  }
  return error;
}

// Every decompressed byte passes here exactly once, in order.
bool archive_check::impl::on_block(const unsigned char* data, std::size_t size) {
  if (auto refused = headers.scan(data, size)) {
    fail(std::move(refused));
    return false;
  }
  if (!walk_ended) {
    offered = data;
    offered_size = size;
    // Returns once libarchive asks for more (so it has let go of this
    // block) or the walk has ended.
    resume();
    offered = nullptr;
    offered_size = 0;
  }
  return !stopped();
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

std::variant<archive_summary, failure> archive_check::impl::finish() {
  if (!error && !finished) {
    finished = true;
    try {
      if (auto refused = stream.finish()) {
        fail(std::move(refused));
      } else {
        input_ended = true;
        resume();
        if (!walk_ended && !error)
          fail(internal("archive check: the walk did not end at the end of the stream"));
        if (!error)
          fail(headers.finish());
      }
    } catch (const std::exception& e) {
      fail(internal(std::string("archive check: ") + e.what()));
    }
  }
  if (error)
    return error;
  summary.uncompressed_size = stream.output_bytes();
  return summary;
}

la_ssize_t archive_check::impl::read_tar(archive* a, void* self, const void** buffer) noexcept {
  auto* s = static_cast<impl*>(self);
  // Being called again means libarchive is done with the previous block:
  // yield so on_block() can return, and come back with the next one.
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
  return static_cast<la_ssize_t>(n);
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
}

void archive_check::impl::walk() {
  archive_ptr tar{archive_read_new()};
  if (!tar)
    throw std::bad_alloc();
  archive_read_support_format_tar(tar.get());
  int r = archive_read_open(tar.get(), this, nullptr, &impl::read_tar, nullptr);
  if (stopped())
    return;
  if (r != ARCHIVE_OK) {
    fail(check_invalid("not a tar archive: " + libarchive_message(tar.get())));
    return;
  }
  walk_entries(tar.get());
}

bool archive_check::impl::walk_entries(archive* tar) {
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
        fail(check_invalid("questionable tar header after entry " +
                           std::to_string(summary.entries) + ": " + m));
        return false;
      }
    } else if (r == ARCHIVE_RETRY) {
      fail(check_invalid("damaged tar header (bad checksum) after entry " +
                         std::to_string(summary.entries)));
      return false;
    } else if (r != ARCHIVE_OK) {
      if (summary.entries == 0 && ::archive_format(tar) == 0)
        fail(check_invalid("not a tar archive: " + libarchive_message(tar)));
      else
        fail(check_invalid("damaged tar archive after entry " + std::to_string(summary.entries) +
                           ": " + libarchive_message(tar)));
      return false;
    }
    if (++summary.entries > limits.max_entries) {
      fail({error_code::archive_bomb,
            "the archive has more than " + std::to_string(limits.max_entries) + " entries"});
      return false;
    }
    auto raw = headers.take(static_cast<uint64_t>(archive_read_header_position(tar)));
    if (!raw) {
      fail(check_invalid("tar headers that readers lay out differently at entry " +
                         std::to_string(summary.entries)));
      return false;
    }
    if (auto refused = policy.check(entry_of(entry, std::move(*raw)))) {
      fail(std::move(refused));
      return false;
    }
    r = archive_read_data_skip(tar);
    if (stopped())
      return false;
    if (r != ARCHIVE_OK) {
      fail(check_invalid("damaged tar archive in entry " + std::to_string(summary.entries) + ": " +
                         libarchive_message(tar)));
      return false;
    }
  }
  if (auto refused = policy.check_symlink_chains()) {
    fail(std::move(refused));
    return false;
  }
  // libarchive stops at the first zero block X where a header is due and
  // consumes it and, if zero too, the next one. Both readings must agree on
  // where the archive ends.
  auto end = headers.end_marker();
  auto q = static_cast<uint64_t>(archive_filter_bytes(tar, 0));
  if (!end || (q != *end + tar_block && q != *end + 2 * tar_block)) {
    fail(check_invalid("missing end-of-archive marker (two zero blocks after the last entry)"));
    return false;
  }
  return true;
}

archive_check::archive_check(archive_format expected, archive_limits limits)
  : impl_(std::make_unique<impl>(expected, limits)) {}

archive_check::~archive_check() = default;

failure archive_check::feed(const char* data, std::size_t size) {
  return impl_->feed(data, size);
}

std::variant<archive_summary, failure> archive_check::finish() {
  return impl_->finish();
}

} // namespace portal::storage
