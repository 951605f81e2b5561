// Human-readable renderings shared by the tables of every command and the report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cdma::formats {

// "512 B", "1.5 KiB", "10.1 MiB", ... (binary units, one decimal).
std::string human_bytes(double bytes);

// Dimensions joined by 'x' ("8x64x32x32"); "" for no dimensions.
std::string dims_text(const std::vector<std::int64_t>& dims);

}  // namespace cdma::formats
