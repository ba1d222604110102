#include "actors/storage_writer.hpp"

#include "actors/caf_error.hpp"
#include "config/log.hpp"
#include "storage/upload_file.hpp"

#include <caf/all.hpp>

#include <functional>
#include <map>

namespace portal {

namespace {

struct open_file {
  std::unique_ptr<storage::upload_file> file;
  caf::actor_addr owner;
};

struct writer_state {
  storage::data_dir_layout layout;
  std::map<std::string, open_file> files;
  const char* name = "storage_writer";
};

using writer_ptr = storage_writer_actor::stateful_pointer<writer_state>;

caf::error failure_from(const storage::storage_error& e) {
  if (e.disk_full())
    return make_error({error_code::insufficient_storage, "the server has no room for this upload"});
  log::error("storage failed", {{"error", e.what()}});
  return make_error({error_code::storage_unavailable, "storage is unavailable, retry later"});
}

open_file* file_for(writer_ptr self, const std::string& id) {
  auto& files = self->state.files;
  auto i = files.find(id);
  if (i != files.end())
    return &i->second;
  auto owner = self->current_sender();
  self->monitor(owner);
  auto file = std::make_unique<storage::upload_file>(self->state.layout, id);
  return &files.emplace(id, open_file{std::move(file), caf::actor_cast<caf::actor_addr>(owner)})
            .first->second;
}

storage_writer_actor::behavior_type storage_writer(writer_ptr self, probe_ptr probe,
                                                   storage::data_dir_layout layout) {
  self->state.layout = std::move(layout);
  // An upload session that died without committing or discarding: its
  // partial file must not outlive it.
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& files = self->state.files;
    for (auto i = files.begin(); i != files.end();)
      i = i->second.owner == dm.source ? files.erase(i) : std::next(i);
  });
  return probed(
    self, probe,
    [=](chunk_atom, const std::string& id, const chunk_ptr& c) -> caf::result<caf::ok_atom> {
      try {
        file_for(self, id)->file->write(c->data.get(), c->size);
        return caf::ok_atom::value;
      } catch (const storage::storage_error& e) {
        self->state.files.erase(id);
        return failure_from(e);
      }
    },
    [=](commit_atom, const std::string& id) -> caf::result<commit_result> {
      auto i = self->state.files.find(id);
      if (i == self->state.files.end())
        return make_error({error_code::internal, "no such upload in storage"});
      auto file = std::move(i->second.file);
      self->state.files.erase(i);
      try {
        auto done = file->commit();
        return commit_result{done.sha256, done.size};
      } catch (const storage::storage_error& e) {
        return failure_from(e);
      }
    },
    [=](discard_atom, const std::string& id) { self->state.files.erase(id); },
    [=](remove_atom, const std::string& id) {
      try {
        storage::remove_archive(self->state.layout, id);
      } catch (const std::exception& e) {
        log::error("could not remove archive", {{"upload_id", id}, {"error", e.what()}});
      }
    });
}

} // namespace

storage_writer_actor spawn_storage_writer(caf::local_actor* sup, probe_ptr probe,
                                          storage::data_dir_layout layout) {
  return sup->spawn<caf::detached>(storage_writer, std::move(probe), std::move(layout));
}

std::string storage_writer_name(const std::string& upload_id, unsigned count) {
  auto k = std::hash<std::string>{}(upload_id) % count;
  return "storage_writer_" + std::to_string(k + 1);
}

} // namespace portal
