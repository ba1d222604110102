#include "actors/supervisor.hpp"

#include "config/log.hpp"

#include <caf/all.hpp>

#include <deque>

namespace portal {

namespace {

using steady = std::chrono::steady_clock;

struct running_child {
  child_spec spec;
  caf::actor handle;
};

struct supervisor_state {
  supervisor_spec spec;
  std::shared_ptr<actor_directory> dir;
  std::vector<running_child> children; // in start order
  std::deque<steady::time_point> restarts;
  bool stopping = false;
  const char* name = "supervisor";

  // CAF destroys the state however the supervisor ends, including
  // exit_reason::kill (untrappable: the exit handler never runs) and
  // `unreachable`. Children are monitored, not linked, so any still running
  // here would be orphaned; a detached db_worker keeps itself alive with its
  // reconnect timer and would block ~actor_system forever.
  ~supervisor_state() {
    for (auto i = children.rbegin(); i != children.rend(); ++i)
      if (i->handle)
        caf::anon_send_exit(i->handle, caf::exit_reason::user_shutdown);
  }
};

using sup_ptr = caf::stateful_actor<supervisor_state>*;

void start_child(sup_ptr self, running_child& c, bool restarted) {
  auto probe = std::make_shared<actor_probe>();
  c.handle = c.spec.start(self, probe);
  self->monitor(c.handle);
  self->state.dir->record(
    actor_entry{c.spec.name, c.spec.kind, self->state.spec.name, c.handle.id(), 0, probe}, c.handle,
    restarted);
}

void stop_child(sup_ptr self, running_child& c) {
  if (!c.handle)
    return;
  self->demonitor(c.handle);
  self->send_exit(c.handle, caf::exit_reason::user_shutdown);
  c.handle = nullptr;
}

void stop_all(sup_ptr self) {
  self->state.stopping = true;
  auto& kids = self->state.children;
  for (auto i = kids.rbegin(); i != kids.rend(); ++i)
    stop_child(self, *i);
}

bool should_restart(restart_policy policy, const caf::error& reason) {
  switch (policy) {
  case restart_policy::permanent:
    return true;
  case restart_policy::transient:
    return reason && reason != caf::exit_reason::user_shutdown;
  case restart_policy::temporary:
    return false;
  }
  return false;
}

// Sliding window of restart times; false when this restart would exceed it.
bool within_intensity(supervisor_state& st) {
  auto now = steady::now();
  while (!st.restarts.empty() && now - st.restarts.front() > st.spec.intensity.period)
    st.restarts.pop_front();
  if (st.restarts.size() >= st.spec.intensity.max_restarts)
    return false;
  st.restarts.push_back(now);
  return true;
}

void on_child_down(sup_ptr self, caf::down_msg& dm) {
  auto& st = self->state;
  if (st.stopping)
    return;
  auto i = std::find_if(st.children.begin(), st.children.end(),
                        [&](const running_child& c) { return c.handle.address() == dm.source; });
  if (i == st.children.end())
    return; // a child we already replaced or stopped
  auto& c = *i;
  c.handle = nullptr;
  auto reason = self->system().render(dm.reason);
  if (!should_restart(c.spec.restart, dm.reason)) {
    log::info("actor stopped", {{"actor", c.spec.name}, {"reason", reason}});
    if (c.spec.restart == restart_policy::temporary)
      st.dir->forget(c.spec.name);
    return;
  }
  if (!within_intensity(st)) {
    log::error("restart intensity exceeded, escalating",
               {{"supervisor", st.spec.name}, {"actor", c.spec.name}, {"reason", reason}});
    stop_all(self);
    self->quit(dm.reason ? dm.reason : caf::make_error(caf::exit_reason::unknown));
    return;
  }
  log::warn("restarting actor",
            {{"supervisor", st.spec.name}, {"actor", c.spec.name}, {"reason", reason}});
  auto first = i - st.children.begin();
  auto last = st.spec.strategy == restart_strategy::rest_for_one
                ? static_cast<std::ptrdiff_t>(st.children.size())
                : first + 1;
  // Stop the dependants newest first, then start them again oldest first.
  for (auto k = last - 1; k > first; --k)
    stop_child(self, st.children[k]);
  for (auto k = first; k < last; ++k)
    start_child(self, st.children[k], true);
}

caf::behavior supervisor(sup_ptr self, probe_ptr probe, std::shared_ptr<actor_directory> dir,
                         supervisor_spec spec) {
  self->state.dir = std::move(dir);
  self->state.spec = std::move(spec);
  for (auto& cs : self->state.spec.children)
    self->state.children.push_back(running_child{cs, nullptr});
  for (auto& c : self->state.children)
    start_child(self, c, false);
  self->set_down_handler([=](caf::down_msg& dm) { on_child_down(self, dm); });
  // Trapping exits: a shutdown from our own supervisor stops the children
  // first (newest first), like OTP's ordered shutdown.
  self->set_exit_handler([=](caf::exit_msg& em) {
    stop_all(self);
    self->quit(em.reason);
  });
  return probed(self, probe, [](caf::get_atom) { return std::string{"supervisor"}; });
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                            supervisor_spec spec) {
  auto name = spec.name;
  auto probe = std::make_shared<actor_probe>();
  auto h = sys.spawn(supervisor, probe, dir, std::move(spec));
  dir->record(actor_entry{name, "supervisor", "", h.id(), 0, probe}, h, false);
  return h;
}

std::vector<std::string> names_started_by(const supervisor_spec& spec) {
  std::vector<std::string> names;
  for (auto& c : spec.children) {
    if (c.restart != restart_policy::permanent)
      continue; // it may have ended already, and stays ended
    names.push_back(c.name);
    names.insert(names.end(), c.descendants.begin(), c.descendants.end());
  }
  return names;
}

child_spec supervisor_child(std::shared_ptr<actor_directory> dir, supervisor_spec spec,
                            restart_policy restart) {
  child_spec cs;
  cs.name = spec.name;
  cs.kind = "supervisor";
  cs.restart = restart;
  cs.descendants = names_started_by(spec);
  cs.start = [dir, spec](caf::event_based_actor* sup, probe_ptr probe) {
    return sup->spawn(supervisor, std::move(probe), dir, spec);
  };
  return cs;
}

} // namespace portal
