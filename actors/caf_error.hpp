// portal::error_code as a CAF 0.17 error category, so that an actor answers a
// request with the contract's code and message as a caf::error
// (`return make_error(failure{...})` from a handler returning caf::result<T>),
// and the requester's error handler turns it back into a `failure`.
//
// Category atom "portal"; the code is the enum's value and the message rides
// in the error's context. Errors of other categories (a request to an actor
// that died, a timeout: CAF's own `sec` and `exit_reason`) become `internal`.
#pragma once

#include "config/error_code.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>

#include <optional>

CAF_ERROR_CODE_ENUM(portal::error_code, "portal")

namespace portal {

caf::error make_error(const failure& f);

// The failure a caf::error of ours stands for; nullopt for CAF's own errors
// (the receiver is gone, a timeout), which a caller logs and answers as
// `internal`: their text is not for clients.
std::optional<failure> to_failure(const caf::error& e);

// Lets actor_system::render() name our codes. 0.17.6's
// add_error_category<T>() template does not compile; this uses the
// renderer overload. Call on the config before the actor_system starts.
void register_error_codes(caf::actor_system_config& cfg);

} // namespace portal
