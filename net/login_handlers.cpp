// The browser's way in and out (SPEC §4, §11): the login page and form, and
// logout.
#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "db/logins.hpp"
#include "db/sessions.hpp"
#include "net/error_table.hpp"
#include "net/handlers.hpp"
#include "net/pages.hpp"
#include "net/proxy_headers.hpp"
#include "net/session_cookie.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

namespace portal::handlers {

namespace {

constexpr std::size_t login_form_limit = 4096;

// The form again, with why signing in failed, and that failure's status and
// headers (net/error_table). A refusal that has an end (a locked name, too
// many attempts from one address, a database away) carries its Retry-After
// seconds in the page too, for a countdown (web/static/login.js).
response login_page(const failure& f, std::optional<unsigned> retry_after_seconds = {}) {
  auto retry = retry_after_seconds.value_or(f ? http_error_of(f.code).retry_after : 0);
  auto res = page_response(http::status::ok, "login",
                           {{"error", f.message},
                            {"retry_after", retry ? std::to_string(retry) : ""}});
  if (f)
    set_error_head(res, f.code, retry_after_seconds);
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

// Failed sign-ins per client address (fail2ban's count): the address's
// bucket holds PORTAL_LOGINS_PER_MINUTE failures. A token is taken when an
// attempt starts, so parallel guesses cannot overshoot the limit, and given
// back when the attempt ends in anything but a failure (a success, a form
// that was never a guess, a database that is away). A team behind one NAT
// can sign in as often as it likes.
class failure_charge {
public:
  failure_charge(std::shared_ptr<token_buckets> buckets, std::string ip)
    : buckets_(std::move(buckets)), ip_(std::move(ip)) {}
  failure_charge(const failure_charge&) = delete;
  failure_charge& operator=(const failure_charge&) = delete;
  ~failure_charge() { settle(false); }

  void settle(bool failed) {
    if (std::exchange(settled_, true))
      return;
    if (!failed)
      buckets_->give_back(ip_);
  }

private:
  std::shared_ptr<token_buckets> buckets_;
  std::string ip_;
  bool settled_ = false;
};
using charge_ptr = std::shared_ptr<failure_charge>;

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

void check_credentials(const services& svc, const exchange_ptr& ex, login_form form,
                       charge_ptr charge) {
  db::login_attempt attempt{std::move(form.username), std::move(form.password), ex->client_ip,
                            ex->request_id, std::string{ex->head[http::field::user_agent]}};
  db::session_policy policy{svc.cfg.secret_key_base, svc.cfg.session_idle, svc.cfg.session_max_age};
  auto query = [attempt = std::move(attempt), policy = std::move(policy)](pqxx::work& tx) {
    return db::attempt_login(tx, attempt, policy);
  };
  auto done = [&svc, ex, charge](db_outcome<db::login_outcome> outcome) {
    auto* login = std::get_if<db::login_outcome>(&outcome);
    using result = db::login_outcome::result;
    charge->settle(login && login->status != result::ok);
    if (!login)
      return ex->reply(login_page(
        {error_code::unavailable, "Signing in is not possible right now; try again in a moment."}));
    if (login->status == result::locked) {
      auto wait = std::max(login->retry_after, 1u);
      return ex->reply(login_page({error_code::too_many_requests,
                                   "Too many failed sign-ins for this name. It is locked for " +
                                     time_left(wait) + "."},
                                  wait));
    }
    if (login->status == result::refused)
      return ex->reply(login_page({error_code::unauthorized, "Wrong user name or password."}));
    auto res = redirect_response("/");
    res.set(http::field::set_cookie,
            session_cookie(svc.cfg.env, login->session.cookie_value, svc.cfg.session_max_age));
    ex->reply(std::move(res));
  };
  submit(*svc.directory, make_db_request<db::login_outcome>(std::string{db::sql::login_user.name},
                                                            ex->db_deadline(svc.cfg),
                                                            std::move(query), std::move(done)));
}

} // namespace

void login_form_page(const services&, exchange_ptr ex) {
  ex->reply(login_page({}));
}

void login(const services& svc, exchange_ptr ex) {
  if (from_foreign_site(svc, ex->head))
    return ex->reply(
      page_error({error_code::forbidden, "Signing in from another site is refused."}));
  if (auto wait = svc.logins->take(ex->client_ip))
    return ex->reply(login_page({error_code::too_many_requests,
                                 "Too many failed sign-ins from this address. Wait " +
                                   time_left(wait) + "."},
                                wait));
  auto charge = std::make_shared<failure_charge>(svc.logins, ex->client_ip);
  auto type = ex->head[http::field::content_type];
  constexpr std::string_view form_type = "application/x-www-form-urlencoded";
  if (type.size() < form_type.size() ||
      !beast::iequals(type.substr(0, form_type.size()), form_type))
    return ex->reply(
      login_page({error_code::unsupported_media_type, "The sign-in form must be sent as a form."}));
  ex->read_body(login_form_limit, [&svc, ex, charge](exchange::small_body body) {
    // read_body refuses with 413 (too large) or 400 (malformed).
    if (auto* status = std::get_if<http::status>(&body))
      return ex->reply(
        login_page({*status == http::status::payload_too_large ? error_code::payload_too_large
                                                               : error_code::bad_request,
                    "The sign-in form could not be read."}));
    auto form = parse_login_form(std::get<std::string>(body));
    if (!form)
      return ex->reply(login_page({error_code::bad_request, "Enter a user name and a password."}));
    check_credentials(svc, ex, std::move(*form), charge);
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
      return ex->reply(
        page_error({error_code::unavailable, "Signing out is not possible right now; try again."}));
    gone();
  };
  submit(*svc.directory,
         make_db_request<bool>(std::string{db::sql::delete_session.name}, ex->db_deadline(svc.cfg),
                               std::move(query), std::move(done)));
}

} // namespace portal::handlers
