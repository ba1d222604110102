#include "net/router.hpp"

#include "config/upload_id.hpp"
#include "net/auth.hpp"
#include "net/handlers.hpp"
#include "net/metrics.hpp"
#include "net/responses.hpp"
#include "net/static_assets.hpp"

#include <boost/url/pct_string_view.hpp>

#include <array>
#include <chrono>

namespace portal {

namespace {

// Routes under /api/v1/uploads/{id}: an id that cannot be one is no upload.
template <handler_fn handler>
void upload_id_route(const services& svc, exchange_ptr ex) {
  if (!valid_upload_id(ex->params.at(0)))
    return ex->reply(no_such_upload());
  handler(svc, std::move(ex));
}

const std::array<route, 28> routes{{
  {http::verb::get, "/health", access::anyone, handlers::health},
  {http::verb::get, "/ready", access::anyone, handlers::ready},
  {http::verb::get, "/", access::page, handlers::home},
  {http::verb::get, "/uploads", access::page, handlers::uploads_page},
  {http::verb::get, "/admin", access::admin_page, handlers::admin_page},
  {http::verb::get, "/login", access::anyone, handlers::login_form_page},
  {http::verb::post, "/login", access::anyone, handlers::login},
  {http::verb::post, "/logout", access::page, handlers::logout},
  {http::verb::get, "/static/{name}", access::anyone, handlers::static_file},
  {http::verb::get, "/api/v1/me", access::user, handlers::me},
  {http::verb::get, "/api/v1/uploads", access::user, handlers::list_uploads},
  {http::verb::put, "/api/v1/uploads/{filename}", access::user, handlers::put_upload, true},
  {http::verb::get, "/api/v1/uploads/{id}", access::user, upload_id_route<handlers::get_upload>},
  {http::verb::delete_, "/api/v1/uploads/{id}", access::user,
   upload_id_route<handlers::delete_upload>},
  {http::verb::get, "/api/v1/uploads/{id}/content", access::user,
   upload_id_route<handlers::get_content>},
  {http::verb::get, "/api/v1/uploads/{id}/entries", access::user,
   upload_id_route<handlers::get_entries>},
  // tus 1.0.0 (SPEC §5.2): OPTIONS needs no authentication.
  {http::verb::options, "/api/v1/tus/", access::anyone, handlers::tus_options},
  {http::verb::options, "/api/v1/tus/{id}", access::anyone, handlers::tus_options},
  {http::verb::post, "/api/v1/tus/", access::user, handlers::tus_create, true},
  {http::verb::get, "/api/v1/tus/{id}", access::user, handlers::tus_head},
  {http::verb::patch, "/api/v1/tus/{id}", access::user, handlers::tus_patch, true},
  {http::verb::delete_, "/api/v1/tus/{id}", access::user, handlers::tus_delete},
  {http::verb::get, "/admin/actors", access::admin, handlers::admin_actors},
  {http::verb::post, "/admin/actors/{id}/kill", access::admin, handlers::admin_kill},
  {http::verb::get, "/admin/metrics", access::admin, handlers::metrics_text},
  {http::verb::get, "/admin/audit", access::admin, handlers::admin_audit},
  {http::verb::get, "/admin/users", access::admin, handlers::admin_users},
  {http::verb::get, "/admin/tokens", access::admin, handlers::admin_tokens},
}};

// An upload's answer from its upload actor comes through the upload link and
// is counted by the connection; any answer through the sink is a refusal
// before an upload actor existed (401, 400, 413, 429, 507), counted here.
void count_refusal_as_upload(const services& svc, exchange& ex) {
  ex.sink = [sink = std::move(ex.sink), stats = svc.metrics,
             started = std::chrono::steady_clock::now()](any_response res) {
    auto status = std::visit([](const auto& r) { return r.result_int(); }, res);
    stats->upload_ended(status, std::chrono::steady_clock::now() - started);
    sink(std::move(res));
  };
}

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool match_pattern(std::string_view pattern, std::string_view path,
                   std::vector<std::string>& params) {
  auto want = segments(pattern);
  auto have = segments(path);
  if (want.size() != have.size())
    return false;
  std::vector<std::string> values;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].size() > 1 && want[i].front() == '{') {
      auto encoded = boost::urls::make_pct_string_view(have[i]);
      if (have[i].empty() || !encoded)
        return false;
      values.push_back(encoded->decode());
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  params = std::move(values);
  return true;
}

} // namespace

route_match match_route(http::verb method, std::string_view path) {
  route_match m;
  for (auto& r : routes) {
    std::vector<std::string> params;
    if (!match_pattern(r.pattern, path, params))
      continue;
    // HEAD is answered wherever GET is.
    if (r.method == method || (method == http::verb::head && r.method == http::verb::get)) {
      m.found = &r;
      m.params = std::move(params);
      return m;
    }
    if (!m.allow.empty())
      m.allow += ", ";
    m.allow += std::string{http::to_string(r.method)};
    if (r.method == http::verb::get)
      m.allow += ", HEAD";
  }
  return m;
}

void dispatch(const services& svc, exchange_ptr ex) {
  if (handlers::is_tus_path(ex->path))
    handlers::announce_tus(*ex);
  auto method = ex->head.method();
  if (method == http::verb::unknown)
    return ex->reply(error_response({error_code::not_implemented, "unknown HTTP method"}));
  auto m = match_route(method, ex->path);
  if (!m.found && !m.allow.empty()) {
    auto res =
      error_response({error_code::method_not_allowed,
                      "this path does not accept " + std::string{ex->head.method_string()}});
    res.set(http::field::allow, m.allow);
    return ex->reply(std::move(res));
  }
  // Under /api/ an anonymous caller learns nothing, not even which paths
  // exist (SPEC §4).
  if (!m.found) {
    auto not_found = [](exchange_ptr e) {
      e->reply(error_response({error_code::not_found, "no such resource"}));
    };
    if (ex->path.rfind("/api/", 0) == 0)
      return authenticate(svc, std::move(ex), access::user, not_found);
    return not_found(std::move(ex));
  }
  ex->params = std::move(m.params);
  if (m.found->upload)
    count_refusal_as_upload(svc, *ex);
  auto handler = m.found->handler;
  if (m.found->who == access::anyone)
    return handler(svc, std::move(ex));
  authenticate(svc, std::move(ex), m.found->who,
               [&svc, handler](exchange_ptr authed) { handler(svc, std::move(authed)); });
}

// PORTAL_METRICS_LISTEN: a private scraper's port serves `GET /metrics` and
// nothing else, unauthenticated (SPEC §3, §7).
void dispatch_metrics_only(const services& svc, exchange_ptr ex) {
  auto method = ex->head.method();
  if (ex->path != "/metrics")
    return ex->reply(error_response({error_code::not_found, "no such resource"}));
  if (method != http::verb::get && method != http::verb::head) {
    auto res = error_response({error_code::method_not_allowed, "/metrics accepts GET and HEAD"});
    res.set(http::field::allow, "GET, HEAD");
    return ex->reply(std::move(res));
  }
  handlers::metrics_text(svc, std::move(ex));
}

} // namespace portal
