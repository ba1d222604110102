// SPEC §7: inspecting the running actor system, for admins.
#include "actors/db_request.hpp"
#include "db/audit.hpp"
#include "net/db_answer.hpp"
#include "net/handlers.hpp"
#include "net/metrics.hpp"
#include "net/responses.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <charconv>

namespace portal::handlers {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

boost::json::object actor_json(const actor_entry& e) {
  boost::json::object a{
    {"id", e.id},   {"name", e.name}, {"kind", e.kind},         {"supervisor", nullptr},
    {"mailbox", 0}, {"messages", 0},  {"restarts", e.restarts}, {"state", "idle"}};
  if (!e.supervisor.empty())
    a["supervisor"] = e.supervisor;
  if (auto& p = e.probe) {
    a["mailbox"] = p->mailbox.load(std::memory_order_relaxed);
    a["messages"] = p->messages.load(std::memory_order_relaxed);
    auto activity = p->activity.load(std::memory_order_relaxed);
    a["state"] = to_string(activity);
    if (activity == actor_activity::busy) {
      auto since = std::chrono::steady_clock::time_point{
        std::chrono::microseconds{p->busy_since_us.load(std::memory_order_relaxed)}};
      a["busy_seconds"] = seconds_since(since);
    }
  }
  return a;
}

boost::json::object upload_json(const upload_progress& u) {
  auto bytes = u.bytes_received.load(std::memory_order_relaxed);
  auto fresh = bytes - std::min(bytes, u.bytes_before.load(std::memory_order_relaxed));
  auto elapsed = seconds_since(u.started);
  boost::json::object o{
    {"id", u.id},
    {"owner", u.owner},
    {"filename", u.filename},
    {"bytes_received", bytes},
    {"bytes_expected", nullptr}, // unknown for a chunked body
    {"bytes_per_second", elapsed > 0 ? static_cast<double>(fresh) / elapsed : 0.0},
    {"seconds", elapsed}};
  if (u.bytes_expected)
    o["bytes_expected"] = *u.bytes_expected;
  return o;
}

} // namespace

void admin_actors(const services& svc, exchange_ptr ex) {
  boost::json::array actors;
  boost::json::array uploads;
  for (auto& e : svc.directory->entries()) {
    actors.push_back(actor_json(e));
    if (e.probe && e.probe->upload)
      uploads.push_back(upload_json(*e.probe->upload));
  }
  ex->reply(json_response(http::status::ok,
                          {{"actors", std::move(actors)}, {"uploads", std::move(uploads)}}));
}

void metrics_text(const services& svc, exchange_ptr ex) {
  response res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = svc.metrics->render();
  res.prepare_payload();
  ex->reply(std::move(res));
}

// Kills an actor as Erlang's observer does (an untrappable exit); its
// supervisor restarts it. Audited first: no audit row, no kill (503).
void admin_kill(const services& svc, exchange_ptr ex) {
  auto& raw = ex->params.at(0);
  caf::actor_id id = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), id);
  caf::actor target;
  if (ec == std::errc{} && end == raw.data() + raw.size())
    target = svc.directory->find(id);
  if (!target)
    return ex->reply(error_response({error_code::not_found, "no such actor"}));
  std::string name;
  bool supervised = false;
  for (auto& e : svc.directory->entries())
    if (e.id == id) {
      name = e.name;
      supervised = !e.supervisor.empty() || e.temporary;
    }
  // Nothing would restart the root: killing it stops the server.
  if (!supervised)
    return ex->reply(error_response(
      {error_code::unsupervised, "the root supervisor has no supervisor to restart it"}));
  db::audit_actor who{ex->user->user_id, ex->user->username, ex->client_ip, ex->request_id};
  auto query = [who, id, name](pqxx::work& tx) {
    db::record_audit(tx, who, "actor.kill", {{"actor", name}, {"id", id}});
    return true;
  };
  auto done = [ex, target, id, name](db_outcome<bool> outcome) {
    if (std::holds_alternative<db_failure>(outcome))
      return ex->reply(error_response({error_code::unavailable, "the kill could not be audited: "
                                                                "the database is unavailable, "
                                                                "retry later"}));
    caf::anon_send_exit(target, caf::exit_reason::kill);
    // 202: the kill is sent; the restart follows asynchronously (SPEC §11).
    ex->reply(json_response(http::status::accepted, {{"killed", {{"id", id}, {"name", name}}}}));
  };
  submit(*svc.directory,
         make_db_request<bool>(std::string{db::sql::insert_audit_event.name},
                               ex->db_deadline(svc.cfg), std::move(query), std::move(done)));
}

// GET /admin/audit?limit=N (1-1000, default 100), newest first (SPEC §11).
void admin_audit(const services& svc, exchange_ptr ex) {
  unsigned limit = 100;
  auto url = boost::urls::parse_origin_form(ex->head.target());
  for (auto param : url->params()) {
    if (param.key != "limit")
      continue;
    auto& v = param.value;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
    if (ec != std::errc{} || end != v.data() + v.size() || limit < 1 || limit > 1000)
      return ex->reply(
        error_response({error_code::invalid_limit, "limit must be an integer from 1 to 1000"}));
  }
  auto query = [limit](pqxx::work& tx) { return db::list_audit(tx, limit); };
  with_db<std::vector<db::audit_event>>(
    svc, ex, db::sql::list_audit_events, query, [ex](const std::vector<db::audit_event>& events) {
      boost::json::array out;
      for (auto& e : events)
        out.push_back(db::to_json(e));
      ex->reply(json_response(http::status::ok, {{"events", std::move(out)}}));
    });
}

} // namespace portal::handlers
