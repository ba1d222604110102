// The two archive formats an upload may have (SPEC §5.3, §6), and every
// name the server gives them: the filename suffix, the "format" field of an
// upload, the compression's name and the media type of a download.
#pragma once

#include <optional>
#include <string_view>

namespace portal::storage {

enum class archive_format { tar_gz, tar_zst };

// The upload object's "format" (SPEC §6) and the uploads.format column:
// "tar.gz" | "tar.zst".
const char* to_string(archive_format f);

// The inverse of to_string(); nullopt for anything else.
std::optional<archive_format> format_from_string(std::string_view s);

// By the filename's suffix, ASCII case-insensitive (SPEC §5.3): ".tar.gz"
// and ".tgz" are tar_gz, ".tar.zst" is tar_zst; a name that is only the
// suffix, or has another one, is nullopt. The rest of the name is not
// checked here.
std::optional<archive_format> format_of_filename(std::string_view name);

// The compression alone: "gzip" | "zstd".
const char* compression_name(archive_format f);

// Content-Type of the stored archive: "application/gzip" | "application/zstd"
// (RFC 6713, RFC 8878 §7.1).
const char* media_type(archive_format f);

} // namespace portal::storage
