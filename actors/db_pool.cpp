#include "actors/db_pool.hpp"

#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

namespace portal {

const char* to_string(db_failure f) {
  switch (f) {
  case db_failure::unavailable:
    return "unavailable";
  case db_failure::timeout:
    return "timeout";
  case db_failure::error:
    return "error";
  case db_failure::in_doubt:
    return "in_doubt";
  }
  return "error";
}

namespace {

enum class worker_status { idle, busy, disconnected };

struct pool_state {
  std::shared_ptr<db_pool_counts> counts;
  std::map<caf::actor_addr, worker_status> workers;
  std::deque<db_worker_actor> idle;
  // Each first in, first out: the requests a client waits for, and the
  // however-late ones nobody waits for (background: audit rows, moved
  // expiries; one back from a lock wait that ran out joins the end of its
  // queue). See dispatch for the order between the two.
  std::deque<db_request_ptr> queue;
  std::deque<db_request_ptr> background;
  // Workers running a request that commits however late (see dispatch).
  std::set<caf::actor_addr> on_late;
  const char* name = "db_pool";

  // True once every worker has said it has no connection. A worker not yet
  // heard from (just started) may still connect: requests wait for it, up
  // to their deadline, instead of failing in the first milliseconds.
  bool all_disconnected(unsigned expected) const {
    if (workers.size() < expected)
      return false;
    for (auto& kv : workers)
      if (kv.second != worker_status::disconnected)
        return false;
    return true;
  }

  void publish_counts(unsigned expected) {
    int n[3] = {0, 0, 0};
    for (auto& kv : workers)
      ++n[static_cast<int>(kv.second)];
    counts->idle = n[0];
    counts->busy = n[1];
    // Workers not yet heard from count as disconnected.
    counts->disconnected = n[2] + static_cast<int>(expected) - static_cast<int>(workers.size());
  }
};

using pool_ptr = db_pool_actor::stateful_pointer<pool_state>;

void drop_idle(pool_state& st, const caf::actor_addr& who) {
  st.idle.erase(std::remove_if(st.idle.begin(), st.idle.end(),
                               [&](const db_worker_actor& a) { return a.address() == who; }),
                st.idle.end());
  st.on_late.erase(who);
}

// Hands the request at `it` to the worker idle the longest.
std::deque<db_request_ptr>::iterator hand(pool_ptr self, std::deque<db_request_ptr>& from,
                                          std::deque<db_request_ptr>::iterator it) {
  auto& st = self->state;
  auto w = st.idle.front();
  st.idle.pop_front();
  st.workers[w.address()] = worker_status::busy;
  if ((*it)->commits_however_late())
    st.on_late.insert(w.address());
  self->send(w, run_atom::value, std::move(*it));
  return from.erase(it);
}

// Hands queued requests to idle workers, dropping ones already answered.
// Requests that commit however late run on at most all connected workers
// but one: each may wait on a stuck lock (a lock wait a try, db_worker.cpp),
// and a burst of them would otherwise keep every worker from the requests a
// client waits on (review 8; the workers expected but not connected
// counted too, review 9). With a single connected worker they share it.
// While none runs, the first one waiting goes ahead of everything (the
// lane's turn), so a steady load of requests a client waits for holds
// none back for good (review 10); then `queue` before `background`, so a
// request a client waits for that commits however late (a refused tus
// upload's deletion) waits for at most the lock waits in progress, however
// many background requests are stuck on a lock (review 9).
void dispatch(pool_ptr self) {
  auto& st = self->state;
  const auto connected = static_cast<std::size_t>(
    std::count_if(st.workers.begin(), st.workers.end(),
                  [](const auto& kv) { return kv.second != worker_status::disconnected; }));
  const std::size_t late_limit = connected > 1 ? connected - 1 : 1;
  auto late_waiting = [](const db_request_ptr& r) {
    return r->commits_however_late() && !r->finished();
  };
  for (auto* from : {&st.queue, &st.background}) {
    if (!st.on_late.empty() || st.idle.empty())
      break;
    if (auto it = std::find_if(from->begin(), from->end(), late_waiting); it != from->end())
      hand(self, *from, it);
  }
  for (auto* from : {&st.queue, &st.background}) {
    for (auto it = from->begin(); it != from->end() && !st.idle.empty();) {
      if ((*it)->finished()) {
        it = from->erase(it);
      } else if (!(*it)->commits_however_late() || st.on_late.size() < late_limit) {
        it = hand(self, *from, it);
      } else if (from == &st.background) {
        break; // all of it commits however late
      } else {
        ++it;
      }
    }
  }
}

void fail_queue(pool_state& st, db_failure why) {
  for (auto* from : {&st.queue, &st.background}) {
    for (auto& req : *from)
      req->fail(why);
    from->clear();
  }
}

db_pool_actor::behavior_type db_pool(pool_ptr self, probe_ptr probe,
                                     std::shared_ptr<db_pool_counts> counts, unsigned expected) {
  self->state.counts = std::move(counts);
  self->state.publish_counts(expected);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    st.workers.erase(dm.source);
    drop_idle(st, dm.source);
    if (st.all_disconnected(expected))
      fail_queue(st, db_failure::unavailable);
    st.publish_counts(expected);
  });
  return probed(
    self, probe,
    [=](submit_atom, db_request_ptr& req) {
      auto& st = self->state;
      if (st.all_disconnected(expected)) {
        req->fail(db_failure::unavailable);
        return;
      }
      auto left = req->deadline() - std::chrono::steady_clock::now();
      self->delayed_send(self, std::max(left, decltype(left)::zero()), expire_atom::value,
                         db_request_weak{req});
      (req->background() ? st.background : st.queue).push_back(std::move(req));
      dispatch(self);
      st.publish_counts(expected);
    },
    [=](retry_atom, db_request_ptr& req) {
      // A request that commits however late, back from a worker after its
      // lock wait ran out (db_request::retry_delay): queued again, at the
      // end, under the deadline and interrupts it already has.
      auto& st = self->state;
      if (st.all_disconnected(expected))
        return req->fail(db_failure::unavailable);
      (req->background() ? st.background : st.queue).push_back(std::move(req));
      dispatch(self);
      st.publish_counts(expected);
    },
    [=](expire_atom, db_request_weak& weak) {
      // Gone: it finished, and nobody holds it any more.
      auto req = weak.lock();
      if (!req)
        return;
      // Queued or running: either way the caller has waited long enough,
      // unless a worker is committing it (db_request::claim_commit), which
      // gets a second budget. Answered now, what a worker still runs for
      // it is interrupted at once (db_request::set_interrupt).
      if (req->expire())
        return self->send(self, interrupt_atom::value, req);
      if (!req->finished())
        self->delayed_send(self, req->budget(), interrupt_atom::value, req);
    },
    [=](interrupt_atom, db_request_ptr& req) {
      // Interrupted while a worker runs it, and again each budget until the
      // worker lets go; one that commits however late is polled until it
      // ends (interruptible in COMMIT only). The cancel connects to the
      // database and may block: never on this actor.
      if (req->finished() && !req->in_worker())
        return;
      // One that waits in the queue (however late, or between retries)
      // has nothing to interrupt: no thread for it.
      if (req->in_worker())
        self->spawn<caf::detached>([req] { req->interrupt(); });
      self->delayed_send(self, req->budget(), interrupt_atom::value, req);
    },
    [=](ready_atom, db_worker_actor& worker) {
      auto& st = self->state;
      if (st.workers.count(worker.address()) == 0)
        self->monitor(worker);
      st.workers[worker.address()] = worker_status::idle;
      drop_idle(st, worker.address());
      st.idle.push_back(worker);
      dispatch(self);
      st.publish_counts(expected);
    },
    [=](lost_atom, db_worker_actor& worker) {
      auto& st = self->state;
      if (st.workers.count(worker.address()) == 0)
        self->monitor(worker);
      st.workers[worker.address()] = worker_status::disconnected;
      drop_idle(st, worker.address());
      if (st.all_disconnected(expected))
        fail_queue(st, db_failure::unavailable);
      st.publish_counts(expected);
    });
}

} // namespace

db_pool_actor spawn_db_pool(caf::local_actor* sup, probe_ptr probe,
                            std::shared_ptr<db_pool_counts> counts, unsigned workers) {
  return sup->spawn(db_pool, std::move(probe), std::move(counts), workers);
}

void submit(const actor_directory& dir, db_request_ptr req) {
  auto pool = dir.find<db_pool_actor>("db_pool");
  if (!pool) {
    req->fail(db_failure::unavailable);
    return;
  }
  caf::anon_send(pool, submit_atom::value, std::move(req));
}

} // namespace portal
