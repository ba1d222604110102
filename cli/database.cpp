#include "cli/database.hpp"

#include "db/users.hpp"

namespace portal::cli {

const std::string& app_database(const config& cfg) {
  if (cfg.database_url.empty()) {
    throw db::refused("DATABASE_URL is not set");
  }
  return cfg.database_url;
}

const std::string& direct_database(const config& cfg) {
  return cfg.database_direct_url.empty() ? app_database(cfg) : cfg.database_direct_url;
}

pqxx::connection connect_app(const config& cfg) {
  return pqxx::connection(app_database(cfg));
}

} // namespace portal::cli
