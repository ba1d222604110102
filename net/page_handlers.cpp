// The signed-in pages (SPEC §7, §11): server-rendered shells of web/*.html
// that carry who is signed in and the session's CSRF token; their scripts
// (web/static/) fetch everything else from the JSON API.
#include "net/handlers.hpp"
#include "net/pages.hpp"

namespace portal::handlers {

namespace {

response signed_in_page(const exchange_ptr& ex, std::string_view page) {
  return page_response(http::status::ok, page,
                       {{"csrf_token", ex->user->csrf_token},
                        {"username", ex->user->username},
                        {"role", ex->user->role}});
}

} // namespace

void home(const services&, exchange_ptr ex) {
  ex->reply(signed_in_page(ex, "index"));
}

void uploads_page(const services&, exchange_ptr ex) {
  ex->reply(signed_in_page(ex, "uploads"));
}

void admin_page(const services&, exchange_ptr ex) {
  ex->reply(signed_in_page(ex, "admin"));
}

} // namespace portal::handlers
