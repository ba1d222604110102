// What the CLI prints: byte counts for people, errors as one line (SPEC §2:
// "non-zero with a one-line reason on stderr").
#pragma once

#include <cstdint>
#include <string>

namespace portal::cli {

// "1.5 GiB", "312.0 KiB", "17 B".
std::string human_bytes(uint64_t bytes);

// The current UTC time through strftime's `format`: "%Y-%m-%dT%H:%M:%SZ"
// (RFC 3339) or "%Y%m%dT%H%M%SZ" (for file names).
std::string utc_now(const char* format);

// `text` with its control characters shown as C escapes ("\n", "\t",
// "\x1b"): a file name printed in a line (a directory's name may hold a
// newline) keeps it one line, and says what the name is.
std::string printable(const std::string& text);

// The first non-empty line of `text`, trimmed: libpq and PostgreSQL messages
// span several ("ERROR:  ...\nDETAIL: ...").
std::string one_line(const std::string& text);

} // namespace portal::cli
