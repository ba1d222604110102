#include "net/auth.hpp"

#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "config/crypto.hpp"
#include "db/sessions.hpp"
#include "db/tokens.hpp"
#include "net/pages.hpp"
#include "net/responses.hpp"
#include "net/session_cookie.hpp"

#include <boost/beast/core/string.hpp>

#include <chrono>
#include <mutex>
#include <unordered_map>

namespace portal {

namespace {

struct credential {
  enum class kind { none, bearer, session } type = kind::none;
  std::string value;
};

// A request with an Authorization header is judged by it alone, even if the
// browser also sent a cookie.
credential credential_of(const http::request_header<>& head, environment env) {
  if (auto auth = head.find(http::field::authorization); auth != head.end()) {
    auto value = auth->value();
    constexpr std::string_view scheme = "bearer ";
    if (value.size() <= scheme.size() || !beast::iequals(value.substr(0, scheme.size()), scheme))
      return {credential::kind::bearer, {}};
    auto token = value.substr(scheme.size());
    while (!token.empty() && token.front() == ' ')
      token.remove_prefix(1);
    return {credential::kind::bearer, std::string{token}};
  }
  if (auto cookie = find_cookie(head, session_cookie_name(env)))
    return {credential::kind::session, std::move(*cookie)};
  return {};
}

bool changes_state(http::verb method) {
  return method == http::verb::post || method == http::verb::put || method == http::verb::patch ||
         method == http::verb::delete_;
}

void refuse_anonymous(const services& svc, const exchange_ptr& ex, access who,
                      const credential& cred) {
  if (is_page(who)) {
    auto res = redirect_response("/login");
    if (cred.type == credential::kind::session)
      res.set(http::field::set_cookie, cleared_session_cookie(svc.cfg.env));
    return ex->reply(std::move(res));
  }
  auto res = error_response({error_code::unauthorized,
                             "a valid API token (Authorization: Bearer <token>) or session is "
                             "required"});
  res.set(http::field::www_authenticate, "Bearer");
  if (cred.type == credential::kind::session) // a stale cookie: the browser may drop it
    res.set(http::field::set_cookie, cleared_session_cookie(svc.cfg.env));
  ex->reply(std::move(res));
}

void refuse(const exchange_ptr& ex, access who, const failure& f) {
  if (is_page(who))
    return ex->reply(page_error(f));
  ex->reply(error_response(f));
}

// At most once a minute per token from this process, whatever the database
// answers: one that takes no writes (a failover, a missing synchronous
// standby) costs one request a minute per token, not one per request.
bool due_for_record(const std::string& token_id) {
  using clock = std::chrono::steady_clock;
  static std::mutex mutex;
  static std::unordered_map<std::string, clock::time_point> recorded;
  auto now = clock::now();
  std::lock_guard<std::mutex> lock(mutex);
  if (recorded.size() > 100000) // tokens proven in the last minute stay
    for (auto it = recorded.begin(); it != recorded.end();)
      it = now - it->second >= std::chrono::minutes{1} ? recorded.erase(it) : std::next(it);
  auto [it, fresh] = recorded.try_emplace(token_id, now);
  if (!fresh && now - it->second < std::chrono::minutes{1})
    return false;
  it->second = now;
  return true;
}

// On the side and droppable: nobody waits, and a late one is rolled back
// (the stamp is lost, not the request).
void record_token_use(const services& svc, const std::string& token_id) {
  if (!due_for_record(token_id))
    return;
  submit(*svc.directory, make_db_request<bool>(
                           std::string{db::sql::touch_token.name},
                           std::chrono::steady_clock::now() + svc.cfg.db_deadline,
                           [token_id](pqxx::work& tx) {
                             db::touch_token(tx, token_id);
                             return true;
                           },
                           [](const db_outcome<bool>&) {}));
}

} // namespace

void authenticate(const services& svc, exchange_ptr ex, access who,
                  std::function<void(exchange_ptr)> next) {
  auto cred = credential_of(ex->head, svc.cfg.env);
  // The credential becomes its stored form here, before the one db request:
  // what cannot be a token or a session id is refused without asking.
  // Either lookup is one statement (the session's slides its idle expiry in
  // the same UPDATE), so it runs without BEGIN/COMMIT: every authenticated
  // request pays one database round trip, not three.
  using found = std::optional<db::identity>;
  std::function<found(pqxx::transaction_base&)> query;
  if (cred.type == credential::kind::bearer) {
    if (auto parts = crypto::parse_token(cred.value))
      query = [id = parts->id, hash = crypto::hash_token_secret(parts->secret)](
                pqxx::transaction_base& tx) { return db::identity_for_token(tx, id, hash); };
  } else if (cred.type == credential::kind::session) {
    if (auto key = crypto::session_key(svc.cfg.secret_key_base, cred.value))
      query = [key = std::move(*key), idle = svc.cfg.session_idle](pqxx::transaction_base& tx) {
        return db::identity_for_session(tx, key, idle);
      };
  }
  if (!query)
    return refuse_anonymous(svc, ex, who, cred);
  auto done = [&svc, ex, who, cred, next = std::move(next)](db_outcome<found> outcome) {
    if (auto* failure = std::get_if<db_failure>(&outcome))
      return ex->reply(db_failure_response(*failure));
    auto& caller = std::get<found>(outcome);
    if (!caller)
      return refuse_anonymous(svc, ex, who, cred);
    if (caller->token_use_unrecorded) // proven, whatever it is allowed
      record_token_use(svc, caller->token_id);
    if (!caller->session_hash.empty() && changes_state(ex->head.method()) &&
        !crypto::equal_constant_time(ex->head["X-CSRF-Token"], caller->csrf_token))
      return refuse(ex, who,
                    {error_code::csrf_token_missing,
                     "this request needs the X-CSRF-Token header of the session"});
    if ((who == access::admin || who == access::admin_page) && caller->role != "admin")
      return refuse(ex, who,
                    {error_code::forbidden,
                     is_page(who) ? "This page is for administrators." : "admin role required"});
    ex->user = std::move(caller);
    next(ex);
  };
  submit(*svc.directory, make_db_autocommit<found>("authenticate", ex->db_deadline(svc.cfg),
                                                   std::move(query), std::move(done)));
}

} // namespace portal
