#include "actors/archive_validator.hpp"

#include "actors/chunk_pool.hpp"
#include "actors/messages.hpp"
#include "actors/upload_types.hpp"

#include <caf/all.hpp>

namespace portal {

namespace {

struct validator_state {
  std::unique_ptr<storage::archive_check> check;
  const char* name = "archive_validator";
};

// The boundary until the net/ status table takes portal::failure itself:
// storage names the refusal, the HTTP status is chosen here.
upload_failure to_failure(const failure& f) {
  int status = f.code == error_code::unsupported_media_type ? 415
               : f.code == error_code::internal             ? 500
                                                            : 422;
  return upload_failure{status, std::string(to_string(f.code)), f.message};
}

caf::behavior archive_validator(caf::stateful_actor<validator_state>* self, probe_ptr probe,
                                storage::archive_format format, storage::archive_limits limits) {
  self->state.check = std::make_unique<storage::archive_check>(format, limits);
  return probed(
    self, probe,
    [=](chunk_atom, const chunk_ptr& c) -> upload_failure {
      if (auto refused = self->state.check->feed(c->data.get(), c->size))
        return to_failure(refused);
      return {};
    },
    [=](finish_atom) -> validation_result {
      auto outcome = self->state.check->finish();
      if (auto* refused = std::get_if<failure>(&outcome))
        return validation_result{to_failure(*refused), 0, 0};
      auto& summary = std::get<storage::archive_summary>(outcome);
      return validation_result{{}, summary.entries, summary.uncompressed_size};
    });
}

} // namespace

caf::actor spawn_archive_validator(caf::event_based_actor* session, probe_ptr probe,
                                   storage::archive_format format, storage::archive_limits limits) {
  return session->spawn<caf::linked>(archive_validator, std::move(probe), format, limits);
}

} // namespace portal
