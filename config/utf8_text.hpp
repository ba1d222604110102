// Text out of bytes (SPEC §11): every byte string that comes from outside
// (an archive's member names, a filename, a header, a form field) reaches
// JSON, HTML, a log line or the audit trail as valid UTF-8, through this one
// encoder. The representation is in docs/ARCHITECTURE.md ("Text out of
// bytes"):
//
//   - well-formed UTF-8 (RFC 3629 §4: no overlong forms, no surrogates,
//     nothing above U+10FFFF) is copied unchanged;
//   - every other byte becomes the four characters \xNN (lowercase hex), one
//     escape per byte.
//
// That is exactly Python's bytes.decode("utf-8", "backslashreplace"), so a
// client can reproduce it; a backslash already in the input is kept as it
// is (the output of valid UTF-8 is the input itself).
//
// The ground floor: includes nothing of the project.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace portal {

// True when `bytes` is well-formed UTF-8 throughout.
bool is_utf8(std::string_view bytes);

// `bytes` as valid UTF-8, as described above. Idempotent.
std::string utf8_text(std::string_view bytes);

// For a message that names something from outside (an entry, a link
// target): utf8_text() in double quotes, with the C0 controls and DEL also
// escaped (\n, \t, \r, else \xNN) so the name reads unambiguously on one
// line. At most `max_bytes` of the input are shown, then "...".
std::string quoted_text(std::string_view bytes, std::size_t max_bytes = 200);

// boost::json::serialize(), with every string and key passed through
// utf8_text() first when one is not valid UTF-8: the result is always valid
// UTF-8 JSON (RFC 8259 §8.1). Boost.JSON itself copies such bytes verbatim.
std::string json_text(const boost::json::value& v);
std::string json_text(const boost::json::object& o);

} // namespace portal
