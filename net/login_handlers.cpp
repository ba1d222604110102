// The browser's way in and out (SPEC §4, §11): the login page and form, and
// logout.
#include "actors/db_request.hpp"
#include "db/logins.hpp"
#include "db/sessions.hpp"
#include "net/handlers.hpp"
#include "net/pages.hpp"
#include "net/proxy_headers.hpp"
#include "net/session_cookie.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <optional>

namespace portal::handlers {

namespace {

constexpr std::size_t login_form_limit = 4096;

// The form again, with an error. A refusal that has an end (a locked name,
// too many attempts from one address, a database away) carries its
// Retry-After seconds in the page too, for a countdown (web/static/login.js).
response login_page(http::status status, std::string_view error, unsigned retry_after = 0) {
  auto res = page_response(status, "login",
                           {{"error", std::string{error}},
                            {"retry_after", retry_after ? std::to_string(retry_after) : ""}});
  if (retry_after)
    res.set(http::field::retry_after, std::to_string(retry_after));
  return res;
}

// "14 minutes", "1 minute", "42 seconds": the time left, rounded up.
std::string time_left(unsigned seconds) {
  if (seconds >= 60) {
    auto minutes = (seconds + 59) / 60;
    return std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
  }
  return std::to_string(seconds) + (seconds == 1 ? " second" : " seconds");
}

// Login CSRF: a page on another site must not sign the browser in to an
// account of its choosing. Browsers send Origin with every form POST (and
// Sec-Fetch-Site); a client that sends neither is no browser.
bool from_foreign_site(const services& svc, const http::request_header<>& head) {
  if (auto origin = head.find(http::field::origin); origin != head.end()) {
    auto own = request_origin(head, !svc.cfg.tls_cert.empty(), svc.cfg.trust_proxy);
    return own.empty() || !beast::iequals(origin->value(), own);
  }
  auto site = head["Sec-Fetch-Site"];
  return !site.empty() && site != "same-origin" && site != "none";
}

struct login_form {
  std::string username;
  std::string password;
};

// application/x-www-form-urlencoded, parsed by Boost.URL; each field once.
std::optional<login_form> parse_login_form(std::string_view body) {
  auto params = boost::urls::parse_query(body);
  if (!params)
    return std::nullopt;
  boost::urls::encoding_opts form_encoding;
  form_encoding.space_as_plus = true;
  std::optional<std::string> username, password;
  for (auto param : *params) {
    auto key = param.key.decode(form_encoding);
    auto* field = key == "username" ? &username : key == "password" ? &password : nullptr;
    if (!field)
      continue;
    if (*field)
      return std::nullopt;
    *field = param.value.decode(form_encoding);
  }
  if (!username || !password || username->empty() || password->empty())
    return std::nullopt;
  return login_form{std::move(*username), std::move(*password)};
}

void check_credentials(const services& svc, const exchange_ptr& ex, login_form form) {
  db::login_attempt attempt{std::move(form.username), std::move(form.password), ex->client_ip,
                            ex->request_id, std::string{ex->head[http::field::user_agent]}};
  db::session_policy policy{svc.cfg.secret_key_base, svc.cfg.session_idle, svc.cfg.session_max_age};
  auto query = [attempt = std::move(attempt), policy = std::move(policy)](pqxx::work& tx) {
    return db::attempt_login(tx, attempt, policy);
  };
  auto done = [&svc, ex](db_outcome<db::login_outcome> outcome) {
    if (std::holds_alternative<db_failure>(outcome))
      return ex->reply(login_page(http::status::service_unavailable,
                                  "Signing in is not possible right now; try again in a moment.",
                                  5));
    auto& login = std::get<db::login_outcome>(outcome);
    using result = db::login_outcome::result;
    if (login.status == result::locked) {
      auto wait = std::max(login.retry_after, 1u);
      return ex->reply(login_page(
        http::status::too_many_requests,
        "Too many failed sign-ins for this name. It is locked for " + time_left(wait) + ".", wait));
    }
    if (login.status == result::refused)
      return ex->reply(login_page(http::status::unauthorized, "Wrong user name or password."));
    auto res = redirect_response("/");
    res.set(http::field::set_cookie,
            session_cookie(svc.cfg.env, login.session.cookie_value, svc.cfg.session_max_age));
    ex->reply(std::move(res));
  };
  submit(*svc.directory, make_db_request<db::login_outcome>("login", ex->db_deadline(svc.cfg),
                                                            std::move(query), std::move(done)));
}

} // namespace

void login_form_page(const services&, exchange_ptr ex) {
  ex->reply(login_page(http::status::ok, ""));
}

void login(const services& svc, exchange_ptr ex) {
  if (from_foreign_site(svc, ex->head))
    return ex->reply(
      page_error(http::status::forbidden, "Signing in from another site is refused."));
  if (auto wait = svc.logins->take(ex->client_ip))
    return ex->reply(login_page(
      http::status::too_many_requests,
      "Too many sign-in attempts from this address. Wait " + time_left(wait) + ".", wait));
  auto type = ex->head[http::field::content_type];
  constexpr std::string_view form_type = "application/x-www-form-urlencoded";
  if (type.size() < form_type.size() ||
      !beast::iequals(type.substr(0, form_type.size()), form_type))
    return ex->reply(
      login_page(http::status::unsupported_media_type, "The sign-in form must be sent as a form."));
  ex->read_body(login_form_limit, [&svc, ex](exchange::small_body body) {
    if (auto* status = std::get_if<http::status>(&body))
      return ex->reply(login_page(*status, "The sign-in form could not be read."));
    auto form = parse_login_form(std::get<std::string>(body));
    if (!form)
      return ex->reply(login_page(http::status::bad_request, "Enter a user name and a password."));
    check_credentials(svc, ex, std::move(*form));
  });
}

void logout(const services& svc, exchange_ptr ex) {
  auto gone = [&svc, ex] {
    auto res = redirect_response("/login");
    res.set(http::field::set_cookie, cleared_session_cookie(svc.cfg.env));
    ex->reply(std::move(res));
  };
  if (ex->user->session_hash.empty()) // a bearer token: no session to end
    return gone();
  db::audit_actor who{ex->user->user_id, ex->user->username, ex->client_ip, ex->request_id};
  auto query = [who, hash = ex->user->session_hash](pqxx::work& tx) {
    if (db::end_session(tx, hash))
      db::record_audit(tx, who, "logout", {});
    return true;
  };
  auto done = [ex, gone](db_outcome<bool> outcome) {
    if (std::holds_alternative<db_failure>(outcome))
      return ex->reply(page_error(http::status::service_unavailable,
                                  "Signing out is not possible right now; try again."));
    gone();
  };
  submit(*svc.directory, make_db_request<bool>("logout", ex->db_deadline(svc.cfg), std::move(query),
                                               std::move(done)));
}

} // namespace portal::handlers
