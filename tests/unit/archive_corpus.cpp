#include "tests/unit/archive_corpus.hpp"

#include <sys/sysmacros.h>

#include <archive.h>
#include <archive_entry.h>
#include <clocale>
#include <cstring>
#include <locale.h>
#include <stdexcept>
#include <zlib.h>
#include <zstd.h>

namespace portal::test {

namespace {

la_ssize_t append_to_string(archive*, void* out, const void* buffer, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), n);
  return static_cast<la_ssize_t>(n);
}

void check(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error("corpus: " + what);
}

std::string message(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "(no message)";
}

} // namespace

namespace {

// libarchive 3.6's pax writer crashes on a name set only as UTF-8 that the
// C locale cannot represent; under a UTF-8 locale (for this thread only) it
// writes the pax "path" record as any tar would.
struct utf8_locale {
  locale_t utf8 = nullptr;
  locale_t previous = nullptr;
  explicit utf8_locale(bool wanted) {
    if (!wanted)
      return;
    utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", nullptr);
    check(utf8 != nullptr, "no C.UTF-8 locale");
    previous = uselocale(utf8);
  }
  ~utf8_locale() {
    if (utf8) {
      uselocale(previous);
      freelocale(utf8);
    }
  }
};

} // namespace

std::string write_tar(const std::vector<member>& members, bool pad_record) {
  bool any_utf8 = false;
  for (const auto& m : members)
    any_utf8 = any_utf8 || m.utf8;
  utf8_locale locale(any_utf8);
  std::string out;
  archive* a = archive_write_new();
  check(a, "archive_write_new");
  archive_write_set_format(a, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
  if (!pad_record)
    archive_write_set_bytes_in_last_block(a, 1);
  check(archive_write_open(a, &out, nullptr, append_to_string, nullptr) == ARCHIVE_OK, message(a));
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, m.path.c_str());
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (m.type) {
    case '0':
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
      break;
    case '1':
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_copy_hardlink(e, m.link.c_str());
      archive_entry_set_size(e, 0);
      break;
    case '2':
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_copy_symlink(e, m.link.c_str());
      break;
    case '3':
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdev(e, makedev(1, 3));
      break;
    case '4':
      archive_entry_set_filetype(e, AE_IFBLK);
      archive_entry_set_rdev(e, makedev(8, 0));
      break;
    case '5':
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, 0755);
      break;
    case '6':
      archive_entry_set_filetype(e, AE_IFIFO);
      break;
    default:
      check(false, "unknown member type");
    }
    int r = archive_write_header(a, e);
    check(r == ARCHIVE_OK, "write_header " + m.path + ": " + message(a));
    if (m.type == '0' && !m.data.empty())
      check(archive_write_data(a, m.data.data(), m.data.size()) ==
              static_cast<la_ssize_t>(m.data.size()),
            "write_data");
    archive_entry_free(e);
  }
  check(archive_write_close(a) == ARCHIVE_OK, "write_close");
  archive_write_free(a);
  return out;
}

std::string ustar_header(const std::string& name, char type, uint64_t size, const std::string& link,
                         const std::string& prefix) {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
  std::memcpy(h + 100, "0000644", 7);
  std::memcpy(h + 108, "0001750", 7);
  std::memcpy(h + 116, "0001750", 7);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  std::memcpy(h + 136, "14544460400", 11);
  h[156] = type;
  std::memcpy(h + 157, link.data(), std::min<std::size_t>(link.size(), 100));
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), std::min<std::size_t>(prefix.size(), 155));
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h)
    sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return std::string(h, sizeof h);
}

std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records, char type) {
  std::string body;
  for (const auto& [key, value] : records) {
    // "<len> key=value\n" where len counts itself.
    std::size_t rest = key.size() + value.size() + 3;
    std::size_t len = rest + 1;
    while (std::to_string(len).size() + rest != len)
      ++len;
    body += std::to_string(len) + " " + key + "=" + value + "\n";
  }
  return ustar_header("PaxHeader/entry", type, body.size()) + padded(body);
}

std::string gnu_long(char type, const std::string& value) {
  std::string data = value + '\0';
  return ustar_header("././@LongLink", type, data.size()) + padded(data);
}

std::string zstd_skippable(const std::string& content, unsigned variant) {
  std::string out = {static_cast<char>(0x50 + variant), 0x2a, 0x4d, 0x18};
  auto n = static_cast<uint32_t>(content.size());
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + content;
}

std::string text(std::size_t n) {
  std::string s;
  while (s.size() < n)
    s += "All work and no play makes Jack a dull boy. " + std::to_string(s.size()) + "\n";
  s.resize(n);
  return s;
}

std::string random_bytes(std::size_t n, std::mt19937& rng) {
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  return random_bytes(n, rng);
}

std::string padded(const std::string& data) {
  return data + std::string((512 - data.size() % 512) % 512, '\0');
}

std::string end_marker() {
  return std::string(1024, '\0');
}

struct compressor::state {
  storage::archive_format format;
  z_stream z{};
  ZSTD_CCtx* zs = nullptr;
  std::string out;
};

compressor::compressor(storage::archive_format f, int level) : s_(new state) {
  s_->format = f;
  if (f == storage::archive_format::tar_gz) {
    check(deflateInit2(&s_->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
          "deflateInit2");
  } else {
    s_->zs = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(s_->zs, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(s_->zs, ZSTD_c_checksumFlag, 1);
  }
}

compressor::~compressor() {
  if (s_->format == storage::archive_format::tar_gz)
    deflateEnd(&s_->z);
  else
    ZSTD_freeCCtx(s_->zs);
  delete s_;
}

void compressor::add(const char* p, std::size_t n) {
  char buf[64 * 1024];
  if (s_->format == storage::archive_format::tar_gz) {
    s_->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    s_->z.avail_in = static_cast<uInt>(n);
    do {
      s_->z.next_out = reinterpret_cast<Bytef*>(buf);
      s_->z.avail_out = sizeof buf;
      check(deflate(&s_->z, Z_NO_FLUSH) != Z_STREAM_ERROR, "deflate");
      s_->out.append(buf, sizeof buf - s_->z.avail_out);
    } while (s_->z.avail_in > 0 || s_->z.avail_out == 0);
  } else {
    ZSTD_inBuffer in{p, n, 0};
    do {
      ZSTD_outBuffer out{buf, sizeof buf, 0};
      size_t r = ZSTD_compressStream2(s_->zs, &out, &in, ZSTD_e_continue);
      check(!ZSTD_isError(r), "ZSTD_compressStream2");
      s_->out.append(buf, out.pos);
    } while (in.pos < in.size);
  }
}

void compressor::add(const std::string& bytes) {
  add(bytes.data(), bytes.size());
}

void compressor::add_zeros(uint64_t n) {
  static const std::string zeros(1 << 20, '\0');
  while (n > 0) {
    auto k = std::min<uint64_t>(n, zeros.size());
    add(zeros.data(), static_cast<std::size_t>(k));
    n -= k;
  }
}

std::string compressor::finish() {
  char buf[64 * 1024];
  if (s_->format == storage::archive_format::tar_gz) {
    int r;
    do {
      s_->z.next_out = reinterpret_cast<Bytef*>(buf);
      s_->z.avail_out = sizeof buf;
      r = deflate(&s_->z, Z_FINISH);
      check(r != Z_STREAM_ERROR, "deflate finish");
      s_->out.append(buf, sizeof buf - s_->z.avail_out);
    } while (r != Z_STREAM_END);
  } else {
    ZSTD_inBuffer in{nullptr, 0, 0};
    size_t left;
    do {
      ZSTD_outBuffer out{buf, sizeof buf, 0};
      left = ZSTD_compressStream2(s_->zs, &out, &in, ZSTD_e_end);
      check(!ZSTD_isError(left), "ZSTD_compressStream2 end");
      s_->out.append(buf, out.pos);
    } while (left != 0);
  }
  return std::move(s_->out);
}

std::string compress(storage::archive_format f, const std::string& raw, int level) {
  compressor c(f, level);
  c.add(raw);
  return c.finish();
}

std::string gzip_stored(const std::string& raw) {
  return compress(storage::archive_format::tar_gz, raw, 0);
}

std::string decompress(storage::archive_format f, const std::string& compressed) {
  std::string out;
  char buf[64 * 1024];
  if (f == storage::archive_format::tar_gz) {
    z_stream z{};
    check(inflateInit2(&z, 15 + 16) == Z_OK, "inflateInit2");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    z.avail_in = static_cast<uInt>(compressed.size());
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      int r = inflate(&z, Z_NO_FLUSH);
      out.append(buf, sizeof buf - z.avail_out);
      if (r == Z_STREAM_END) {
        if (z.avail_in == 0)
          break;
        inflateReset(&z); // next member
        continue;
      }
      check(r == Z_OK, "inflate");
    }
    inflateEnd(&z);
  } else {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer o{buf, sizeof buf, 0};
      size_t r = ZSTD_decompressStream(d, &o, &in);
      check(!ZSTD_isError(r), "ZSTD_decompressStream");
      out.append(buf, o.pos);
    }
    ZSTD_freeDCtx(d);
  }
  return out;
}

storage::archive_limits default_limits() {
  storage::archive_limits l;
  l.max_entries = 100000;
  l.max_uncompressed = uint64_t(1) << 30;
  return l;
}

check_run run_check(storage::archive_format f, const std::string& bytes, std::size_t chunk,
                    storage::archive_limits limits) {
  storage::archive_check c(f, limits);
  check_run run;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    std::size_t n = std::min(chunk, bytes.size() - at);
    // A private copy per chunk, released right after feed(): ASan then
    // catches any reference kept to it.
    std::string piece = bytes.substr(at, n);
    auto refused = c.feed(piece.data(), piece.size());
    piece.assign(piece.size(), '\xee');
    run.fed = at + n;
    if (refused) {
      run.outcome = refused;
      run.refused_while_feeding = true;
      return run;
    }
  }
  run.outcome = c.finish();
  return run;
}

std::string flip(std::string s, std::size_t at, unsigned char mask) {
  s.at(at) = static_cast<char>(static_cast<unsigned char>(s.at(at)) ^ mask);
  return s;
}

} // namespace portal::test
