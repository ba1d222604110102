#include "actors/archive_validator.hpp"

#include "actors/caf_error.hpp"

#include <caf/all.hpp>

namespace portal {

namespace {

struct validator_state {
  std::unique_ptr<storage::archive_check> check;
  const char* name = "archive_validator";
};

using validator_ptr = archive_validator_actor::stateful_pointer<validator_state>;

archive_validator_actor::behavior_type archive_validator(validator_ptr self, probe_ptr probe,
                                                         storage::archive_format format,
                                                         storage::archive_limits limits) {
  self->state.check = std::make_unique<storage::archive_check>(format, limits);
  return probed(
    self, probe,
    [=](chunk_atom, const chunk_ptr& c) -> caf::result<caf::ok_atom> {
      if (auto refused = self->state.check->feed(c->data.get(), c->size))
        return make_error(std::move(refused));
      return caf::ok_atom::value;
    },
    [=](finish_atom) -> caf::result<validation_result> {
      auto outcome = self->state.check->finish();
      if (auto* refused = std::get_if<failure>(&outcome))
        return make_error(std::move(*refused));
      auto& summary = std::get<storage::archive_summary>(outcome);
      return validation_result{summary.entries, summary.uncompressed_size};
    });
}

} // namespace

archive_validator_actor spawn_archive_validator(caf::local_actor* session, probe_ptr probe,
                                                storage::archive_format format,
                                                storage::archive_limits limits) {
  return session->spawn<caf::linked>(archive_validator, std::move(probe), format, limits);
}

} // namespace portal
