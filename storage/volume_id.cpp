#include "storage/volume_id.hpp"

#include "config/upload_id.hpp"
#include "storage/fd_io.hpp"
#include "storage/upload_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <optional>
#include <unistd.h>

namespace portal::storage {

namespace fs = std::filesystem;

namespace {

struct stored_identity {
  std::string id, machine;
};

// A machine id is a line of the file: printable ASCII, no space.
bool valid_machine_id(std::string_view machine) {
  return !machine.empty() && machine.size() <= 255 &&
         std::all_of(machine.begin(), machine.end(), [](char c) { return c > ' ' && c < 127; });
}

// nullopt when the file does not exist. Never through a symlink (ELOOP): the
// file is the directory's own, or it is refused.
std::optional<stored_identity> read_identity(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT)
      return std::nullopt;
    throw_errno(errno, "open " + file.string());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_errno(EINVAL, file.string() + " is not a regular file");
  }
  char buf[400]; // an id (64), a machine (255), two newlines: a longer file is refused
  ssize_t n;
  do
    n = ::read(fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0)
    throw_errno(err, "read " + file.string());
  if (static_cast<std::size_t>(n) == sizeof buf)
    throw_errno(EINVAL, file.string() + " is too long for a volume id");
  std::string text(buf, static_cast<std::size_t>(n));
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  stored_identity found;
  auto newline = text.find('\n');
  found.id = text.substr(0, newline);
  if (newline != std::string::npos) {
    found.machine = text.substr(newline + 1);
    if (!valid_machine_id(found.machine))
      throw_errno(EINVAL, file.string() + " does not name a valid machine on its second line");
  }
  if (!valid_upload_id(found.id))
    throw_errno(EINVAL, file.string() + " does not hold a volume id");
  return found;
}

std::string text_of(const std::string& id, const std::string& machine) {
  return machine.empty() ? id + "\n" : id + "\n" + machine + "\n";
}

// Writes a new id for `machine_id`: replacing the file when `replaced` names
// the id there, else only where there is none (a lost race returns the
// winner's id when it is for this machine).
volume_identity make_identity(const data_dir_layout& layout, const std::string& machine_id,
                              const std::optional<stored_identity>& replaced) {
  const auto file = layout.root / "volume-id";
  volume_identity made{new_upload_id(), true, {}, {}};
  if (replaced) {
    made.copied_from = replaced->id;
    made.copied_from_machine = replaced->machine;
  }
  auto draft = layout.tmp / (new_upload_id() + ".volume-id.part");
  write_file_synced(draft, text_of(made.id, machine_id), O_EXCL);
  try {
    if (replaced)
      fs::rename(draft, file);
    else
      rename_no_replace(draft, file);
  } catch (const storage_error& e) {
    ::unlink(draft.c_str());
    if (e.code() != std::errc::file_exists)
      throw;
    auto theirs = read_identity(file);
    if (!theirs || theirs->machine != machine_id)
      throw_errno(EEXIST, file.string() + " changed while it was being made");
    return {theirs->id, false, {}, {}};
  } catch (const fs::filesystem_error& e) {
    ::unlink(draft.c_str());
    throw storage_error(e.code(), "rename " + draft.string());
  }
  fsync_directory(layout.root);
  return made;
}

void check_machine(const std::string& machine_id) {
  if (!machine_id.empty() && !valid_machine_id(machine_id))
    throw_errno(EINVAL, "FLY_MACHINE_ID is not printable ASCII without spaces");
}

} // namespace

volume_identity open_volume_identity(const data_dir_layout& layout, const std::string& machine_id) {
  check_machine(machine_id);
  auto found = read_identity(layout.root / "volume-id");
  if (found && found->machine == machine_id)
    return {found->id, false, {}, {}};
  // None, or another machine's: a copy gets its own id, the original keeps its.
  return make_identity(layout, machine_id, found);
}

volume_identity renew_volume_identity(const data_dir_layout& layout,
                                      const std::string& machine_id) {
  check_machine(machine_id);
  auto found = read_identity(layout.root / "volume-id");
  if (!found)
    throw_errno(ENOENT, (layout.root / "volume-id").string() + " is gone");
  return make_identity(layout, machine_id, found);
}

row_verdict judge_rows(const row_volumes& rows, const std::string& here,
                       const std::set<std::string>& present) {
  row_verdict v;
  bool any_here = false;
  for (const auto& [id, volume] : rows) {
    const bool found = present.count(id) != 0;
    if (volume == here && !here.empty()) {
      any_here = any_here || found;
      if (!found)
        v.missing.push_back(id);
    } else if (volume.empty()) {
      (found ? v.claimed : v.unattributed).push_back(id);
    } else if (found) {
      v.foreign.push_back(id);
    }
  }
  v.holds_any = any_here;
  return v;
}

} // namespace portal::storage
