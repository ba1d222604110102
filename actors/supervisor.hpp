// OTP-style supervision for CAF 0.17 actors. What to restart, when, and when
// to give up are data (child_spec, supervisor_spec), not code in the actors.
//
//   permanent  always restarted;
//   transient  restarted only after an abnormal exit;
//   temporary  never restarted (per-upload actors: their crash fails one upload).
//
// Strategies: one_for_one restarts the failed child; rest_for_one also
// restarts every child started after it (they depend on it), in order.
// Intensity: more than `max_restarts` within `period` and the supervisor stops
// its children and exits with the child's reason, escalating to its own
// supervisor.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace portal {

enum class restart_policy { permanent, transient, temporary };
enum class restart_strategy { one_for_one, rest_for_one };

struct restart_intensity {
  std::size_t max_restarts = 5;
  std::chrono::milliseconds period{10000};
};

struct child_spec {
  std::string name; // stable across restarts; the directory key
  std::string kind;
  restart_policy restart = restart_policy::permanent;
  // Spawns the child (the supervisor monitors it) and hands it its probe,
  // a fresh one per start. Runs inside the supervisor, so siblings started
  // earlier are already in the directory. A typed child is returned
  // actor_cast to caf::actor: the supervisor never sends it anything but
  // exits (actors/actor_tree.cpp).
  std::function<caf::actor(caf::event_based_actor* sup, probe_ptr probe)> start;
  // For a child that is itself a supervisor: the names it starts, at every
  // depth (supervisor_child sets them). Empty for a worker.
  std::vector<std::string> descendants = {};
};

struct supervisor_spec {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  restart_intensity intensity;
  std::vector<child_spec> children;
};

// Every permanent child a supervisor of `spec` starts, at every depth, its
// own name excluded: what actor_directory::wait_for() waits on, since CAF runs a
// spawned actor's init later, on a scheduler thread, where OTP's start_link
// would have waited for it.
std::vector<std::string> names_started_by(const supervisor_spec& spec);

// Spawns a supervisor (not linked to anything); use supervisor_child() to
// nest one under another.
caf::actor spawn_supervisor(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                            supervisor_spec spec);

// A child_spec whose child is itself a supervisor.
child_spec supervisor_child(std::shared_ptr<actor_directory> dir, supervisor_spec spec,
                            restart_policy restart = restart_policy::permanent);

} // namespace portal
