// `upload-portal serve`: the actor system, the HTTP listener on Asio threads,
// and the SPEC §9 lifecycle (SIGTERM/SIGINT: stop accepting, drain up to
// PORTAL_DRAIN_SECONDS, exit 0).
#pragma once

#include "config/config.hpp"

namespace portal {

// Returns the process exit code.
int serve(const config& cfg);

} // namespace portal
