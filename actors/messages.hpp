// Every atom the actors exchange, in one place. CAF 0.17 atoms are at most
// 10 characters; CAF 0.18 turns these into type-ID'd structs, so keeping them
// together makes that move mechanical.
#pragma once

#include <caf/atom.hpp>

namespace portal {

using submit_atom = caf::atom_constant<caf::atom("submit")>;       // work for the db pool
using run_atom = caf::atom_constant<caf::atom("run")>;             // pool -> worker
using ready_atom = caf::atom_constant<caf::atom("ready")>;         // worker -> pool: idle
using lost_atom = caf::atom_constant<caf::atom("lost")>;           // worker -> pool: no connection
using connect_atom = caf::atom_constant<caf::atom("connect")>;     // worker: try to (re)connect
using expire_atom = caf::atom_constant<caf::atom("expire")>;       // pool: a request's deadline
using interrupt_atom = caf::atom_constant<caf::atom("interrupt")>; // pool: a COMMIT too long
using retry_atom = caf::atom_constant<caf::atom("retry")>;         // worker -> pool: run it again

} // namespace portal

namespace portal {

// The upload pipeline (docs/ARCHITECTURE.md, "One upload").
using chunk_atom = caf::atom_constant<caf::atom("chunk")>;       // bytes of an upload
using eof_atom = caf::atom_constant<caf::atom("eof")>;           // the body ended
using abort_atom = caf::atom_constant<caf::atom("abort")>;       // the client went away
using finish_atom = caf::atom_constant<caf::atom("finish")>;     // validator: end of stream
using commit_atom = caf::atom_constant<caf::atom("commit")>;     // storage: make durable
using discard_atom = caf::atom_constant<caf::atom("discard")>;   // storage: drop the temp file
using remove_atom = caf::atom_constant<caf::atom("remove")>;     // storage: drop a committed file
using recorded_atom = caf::atom_constant<caf::atom("recorded")>; // db: the row is committed
using list_atom = caf::atom_constant<caf::atom("list")>;         // archive_reader: list members
using reap_atom = caf::atom_constant<caf::atom("reap")>;         // retention_reaper: look now
using reaped_atom = caf::atom_constant<caf::atom("reaped")>;     // db: expired rows deleted
using settled_atom = caf::atom_constant<caf::atom("settled")>;   // db: a request surely ended
                                                                 // uncommitted (its undo)
using fate_atom = caf::atom_constant<caf::atom("fate")>;         // db: what a COMMIT in doubt did

} // namespace portal
