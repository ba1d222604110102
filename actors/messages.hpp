// Every atom the actors exchange, in one place. CAF 0.17 atoms are at most
// 10 characters; CAF 0.18 turns these into type-ID'd structs, so keeping them
// together makes that move mechanical.
#pragma once

#include <caf/atom.hpp>

namespace portal {

using submit_atom = caf::atom_constant<caf::atom("submit")>;   // work for the db pool
using run_atom = caf::atom_constant<caf::atom("run")>;         // pool -> worker
using ready_atom = caf::atom_constant<caf::atom("ready")>;     // worker -> pool: idle
using lost_atom = caf::atom_constant<caf::atom("lost")>;       // worker -> pool: no connection
using connect_atom = caf::atom_constant<caf::atom("connect")>; // worker: try to (re)connect
using expire_atom = caf::atom_constant<caf::atom("expire")>;   // pool: a request's deadline
using restart_atom = caf::atom_constant<caf::atom("restart")>; // supervisor: delayed restart
using stats_atom = caf::atom_constant<caf::atom("stats")>;

} // namespace portal
