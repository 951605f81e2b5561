// Text shared by every command: renderings for tables, and the one check that strings read from
// files (trace attributes, dataset names, /timeline and /stats rows, spool records) pass before any
// writer (JSON, CSV, tables) sees them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cdma::formats {

// "512 B", "1.5 KiB", "10.1 MiB", ... (binary units, one decimal).
std::string human_bytes(double bytes);

// Dimensions joined by 'x' ("8x64x32x32"); "" for no dimensions.
std::string dims_text(const std::vector<std::int64_t>& dims);

// True when `s` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) and
// holds no C0 control character or DEL: text that every JSON, CSV and table writer accepts as is.
bool is_clean_text(std::string_view s) noexcept;

// `s` itself when is_clean_text(s); otherwise each byte that is not part of a valid UTF-8 sequence,
// and each control character, replaced by the four characters "\xHH" (upper-case hex). The result
// is always clean text, and the same input always gives the same output.
std::string clean_text(std::string_view s);

// The longest prefix of clean text `s` of at most `max_bytes` bytes that does not cut a UTF-8
// sequence (for fixed-size string fields).
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) noexcept;

}  // namespace cdma::formats
