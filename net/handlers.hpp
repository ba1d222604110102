// The request handlers, one small function per endpoint.
#pragma once

#include "net/exchange.hpp"
#include "storage/archive_check.hpp"
#include "storage/archive_format.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace portal::handlers {

void health(const services& svc, exchange_ptr ex); // GET /health (SPEC §7)
void ready(const services& svc, exchange_ptr ex);  // GET /ready  (SPEC §7, §11)
void me(const services& svc, exchange_ptr ex);     // GET /api/v1/me (SPEC §6)

// net/login_handlers.cpp
void login_form_page(const services& svc, exchange_ptr ex); // GET /login
void login(const services& svc, exchange_ptr ex);           // POST /login
void logout(const services& svc, exchange_ptr ex);          // POST /logout

// net/page_handlers.cpp: the signed-in pages (web/*.html; data from the API)
void home(const services& svc, exchange_ptr ex);         // GET /: the upload page
void uploads_page(const services& svc, exchange_ptr ex); // GET /uploads
void admin_page(const services& svc, exchange_ptr ex);   // GET /admin: the dashboard

// net/upload_handlers.cpp
void put_upload(const services& svc, exchange_ptr ex);    // PUT /api/v1/uploads/{filename}
void list_uploads(const services& svc, exchange_ptr ex);  // GET /api/v1/uploads
void get_upload(const services& svc, exchange_ptr ex);    // GET /api/v1/uploads/{id}
void delete_upload(const services& svc, exchange_ptr ex); // DELETE /api/v1/uploads/{id}
// The answer to PUT /api/v1/uploads/{filename} once its upload session has
// answered: 201 + Location + the upload object, or the error (its status
// and headers from net/error_table).
response upload_response(const upload_answer& answer);

// SPEC §5.3: the archive format a plain name of [A-Za-z0-9._-] (at most 255,
// no leading dot, an archive suffix) stands for; nullopt for any other name
// (400 invalid_filename). PUT's {filename} and tus's `filename` metadata.
std::optional<storage::archive_format> archive_name_format(const std::string& name);

// What every upload's archive check gets from the configuration, PUT's and
// tus's alike: the decompressed-size limit (32 x max_upload_bytes) and the
// gzip inflater (PORTAL_GZIP_INFLATER).
storage::archive_limits archive_limits_of(const config& cfg);

// net/tus_handlers.cpp: tus 1.0.0 (SPEC §5.2, docs/TUS.md)
// tus 1.0.0: every response to a request under /api/v1/tus says
// Tus-Resumable, the router's and authentication's refusals (401, 404, 405,
// 503) included; dispatch() calls this before routing such a request.
bool is_tus_path(std::string_view path);
void announce_tus(exchange& ex);
void tus_options(const services& svc, exchange_ptr ex); // OPTIONS /api/v1/tus/[{id}], no auth
void tus_create(const services& svc, exchange_ptr ex);  // POST /api/v1/tus/
void tus_head(const services& svc, exchange_ptr ex);    // HEAD (and GET) /api/v1/tus/{id}
void tus_patch(const services& svc, exchange_ptr ex);   // PATCH /api/v1/tus/{id}
void tus_delete(const services& svc, exchange_ptr ex);  // DELETE /api/v1/tus/{id}
// A tus session's answer to a PATCH or a POST with a body: 204 (201 for a
// creation) + Upload-Offset + Upload-Expires, or the error; Tus-Resumable on both.
response tus_response(const upload_answer& answer);

// net/download_handlers.cpp
void get_content(const services& svc, exchange_ptr ex); // GET /api/v1/uploads/{id}/content
void get_entries(const services& svc, exchange_ptr ex); // GET /api/v1/uploads/{id}/entries

// net/admin_handlers.cpp
void admin_actors(const services& svc, exchange_ptr ex); // GET /admin/actors
void admin_kill(const services& svc, exchange_ptr ex);   // POST /admin/actors/{id}/kill
void admin_audit(const services& svc, exchange_ptr ex);  // GET /admin/audit?limit=N

// net/account_handlers.cpp: read-only overviews, never a hash or a secret
void admin_users(const services& svc, exchange_ptr ex);  // GET /admin/users
void admin_tokens(const services& svc, exchange_ptr ex); // GET /admin/tokens
// GET /admin/metrics, and GET /metrics on PORTAL_METRICS_LISTEN
void metrics_text(const services& svc, exchange_ptr ex);

} // namespace portal::handlers
