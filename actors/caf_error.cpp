#include "actors/caf_error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>

#include <string>

namespace portal {

namespace {

constexpr auto category = caf::atom("portal");

} // namespace

caf::error make_error(const failure& f) {
  return caf::make_error(f.code, f.message);
}

std::optional<failure> to_failure(const caf::error& e) {
  if (e.category() != category)
    return std::nullopt;
  std::string message;
  if (e.context().match_elements<std::string>())
    message = e.context().get_as<std::string>(0);
  return failure{static_cast<error_code>(e.code()), std::move(message)};
}

void register_error_codes(caf::actor_system_config& cfg) {
  cfg.add_error_category(category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) -> std::string {
                           std::string out{to_string(static_cast<error_code>(code))};
                           if (!ctx.empty())
                             out += caf::to_string(ctx);
                           return out;
                         });
}

} // namespace portal
