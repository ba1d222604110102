// An upload's id (SPEC §6): 22 random url-safe characters when the server
// makes one (132 bits), and only [A-Za-z0-9_-]{1,64} is ever accepted as one.
// The one rule for every layer: ids name files (storage/ refuses anything
// else, which rules out path tricks such as "../x" by construction), reach
// SQL (db/; bytes that are not UTF-8 would make PostgreSQL fail rather than
// find no row) and come in URLs (net/ answers 404 without asking).
#pragma once

#include <string>
#include <string_view>

namespace portal {

// ASCII only, whatever the locale.
bool valid_upload_id(std::string_view id);

std::string new_upload_id();

} // namespace portal
