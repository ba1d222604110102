// The bytes of one tus partial upload (SPEC §5.2, docs/TUS.md):
// <data_dir>/partials/<id>.part, only ever appended to or cut back to an
// earlier size. Its size after sync() is the upload's durable offset: the
// offset is never stored anywhere else. This relies on the filesystem not
// exposing unwritten blocks inside i_size after a power loss (ext4
// data=ordered, XFS), so after any crash the file holds a prefix of what
// the client sent.
//
// Every call throws storage_error (storage/upload_file.hpp) with the errno
// of the failing system call (ENOSPC: the disk is full).
#pragma once

#include "storage/data_dir.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace portal::storage {

class partial_file {
public:
  // Creates the empty file exclusively (mode 0640). Its name is made
  // durable (fsync of partials/) with its first bytes, by sync(): a crash
  // before that can lose only an empty file, whose row the next start
  // deletes (HEAD then answers 404; no byte was acknowledged). Creation
  // thus costs no fsync, which matters because it runs in a database
  // worker, inside the creation's transaction.
  static partial_file create(const data_dir_layout& layout, const std::string& id);
  // Opens an existing partial (ENOENT when there is none) and syncs it, so
  // its size can be believed as the durable offset. A hold left by a crash
  // (see hold()) cuts the file back to the held offset first, and goes.
  static partial_file open(const data_dir_layout& layout, const std::string& id);

  partial_file(partial_file&& other) noexcept;
  partial_file& operator=(partial_file&& other) noexcept;
  partial_file(const partial_file&) = delete;
  partial_file& operator=(const partial_file&) = delete;
  ~partial_file();

  void append(const char* data, std::size_t size);
  // Everything appended so far is durable, the file's name included: fsync
  // of the file (none when nothing was appended or cut since the last one),
  // and of partials/ once, the first time the file holds bytes.
  void sync();
  uint64_t size() const;   // bytes appended so far (durable only after sync())
  void cut_to(uint64_t n); // ftruncate to n (<= size()) and fsync
  // A checksummed PATCH counts all or nothing (SPEC §5.2 checksum), also
  // across a crash, which keeps whatever a killed process had appended.
  // hold() syncs the file and makes "cut back to the current size" durable
  // (partials/<id>.hold, fsynced, then partials/) before the PATCH appends
  // anything; release() syncs what was appended and removes the hold (one
  // more fsync of partials/), once the bytes are verified or cut back. Two
  // fsyncs of partials/ and one of the hold per checksummed PATCH.
  void hold();
  void release();
  // Reads up to `size` bytes at `offset`; returns how many (0 at the end).
  std::size_t read_at(uint64_t offset, char* data, std::size_t size) const;
  // Syncs the file's bytes, moves it to archives/<id> (never replacing) and
  // fsyncs archives/; the partial is then closed.
  std::filesystem::path commit_to_archive(const data_dir_layout& layout);

  const std::filesystem::path& path() const { return path_; }

private:
  partial_file(std::filesystem::path path, int fd, uint64_t size);
  std::filesystem::path path_;
  std::string id_;
  int fd_ = -1;
  uint64_t size_ = 0;
  void sync_data();           // the file's fsync alone
  bool dirty_ = false;        // appended to or cut since the last fsync
  bool name_durable_ = false; // partials/ fsynced since the file held bytes
  bool held_ = false;         // a hold of this file is on disk
};

// The inverse of commit_to_archive, for an archive whose record the
// database never took (actors/tus_session.cpp): archives/<id> goes back to
// partials/<id>.part (never replacing), and partials/ is fsynced, so the
// upload stays resumable at its full length. A crash in between leaves an
// archive without a row, which the next start moves to orphans/.
void return_to_partials(const data_dir_layout& layout, const std::string& id);

// Removes the partial of `id` and its hold (missing is not an error) and
// fsyncs partials/.
void remove_partial(const data_dir_layout& layout, const std::string& id);

// partials/<id>.part. Throws storage_error (EINVAL) for an invalid id.
std::filesystem::path partial_path(const data_dir_layout& layout, const std::string& id);

// The ids of every "<id>.part" in partials/ (start-up reconciliation).
std::vector<std::string> partial_ids(const data_dir_layout& layout);

} // namespace portal::storage
