#include "storage/archive_entries.hpp"

#include "config/utf8_text.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <memory>

namespace portal::storage {

namespace {

struct archive_reader_free {
  void operator()(archive* a) const { archive_read_free(a); }
};

[[noreturn]] void fail(archive* a, const std::filesystem::path& file, const std::string& what) {
  const char* m = archive_error_string(a);
  throw archive_read_error(what + " " + file.string() + ": " + (m ? m : "unknown error"));
}

const char* kind_name(archive_entry* e) {
  if (archive_entry_hardlink(e) || archive_entry_hardlink_utf8(e))
    return "hardlink";
  switch (archive_entry_filetype(e)) {
  case AE_IFDIR:
    return "dir";
  case AE_IFLNK:
    return "symlink";
  case AE_IFREG:
    return "file";
  default:
    // archive_check refuses every other type at upload.
    return nullptr;
  }
}

} // namespace

std::vector<archive_entry_info> list_entries(const std::filesystem::path& stored_archive,
                                             archive_format f, std::size_t max_entries) {
  std::unique_ptr<archive, archive_reader_free> a{archive_read_new()};
  if (!a)
    throw std::bad_alloc();
  // Only the expected filter, built in: the stored file was checked to be
  // exactly that.
  if ((f == archive_format::tar_gz ? archive_read_support_filter_gzip(a.get())
                                   : archive_read_support_filter_zstd(a.get())) != ARCHIVE_OK ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK)
    fail(a.get(), stored_archive, "cannot set up reading");
  if (archive_read_open_filename(a.get(), stored_archive.c_str(), std::size_t{256} * 1024) !=
      ARCHIVE_OK)
    fail(a.get(), stored_archive, "cannot open");

  std::vector<archive_entry_info> out;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF)
      break;
    // A warning here is a name that does not convert to the C locale: the
    // raw bytes are still there (archive_check accepted it on that basis).
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      fail(a.get(), stored_archive, "cannot read");
    if (out.size() >= max_entries)
      throw archive_read_error(stored_archive.string() + " has more than " +
                               std::to_string(max_entries) + " entries");
    const char* type = kind_name(e);
    const char* utf8 = archive_entry_pathname_utf8(e);
    const char* raw = archive_entry_pathname(e);
    if (!type || (!utf8 && !raw))
      throw archive_read_error(stored_archive.string() + ": entry " +
                               std::to_string(out.size() + 1) +
                               " has an unexpected type or no name");
    archive_entry_info info;
    // Bytes from the archive reach JSON (SPEC §11 "Text out of bytes").
    info.path = utf8_text(utf8 ? utf8 : raw);
    info.type = type;
    info.size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0
                  ? static_cast<uint64_t>(archive_entry_size(e))
                  : 0;
    out.push_back(std::move(info));
    if (archive_read_data_skip(a.get()) != ARCHIVE_OK)
      fail(a.get(), stored_archive, "cannot read");
  }
  return out;
}

} // namespace portal::storage
