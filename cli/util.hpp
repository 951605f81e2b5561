// Small helpers shared by the cdma verbs.
#pragma once

#include <string>

namespace cdma::cli {

// "512 B", "1.5 KiB", "10.1 MiB", ... (binary units, one decimal).
std::string human_bytes(double bytes);

// Writes `text` to `path` via a temporary file and a rename, so that a failed or interrupted run
// never leaves a half-written file under the final name. "-" writes to stdout. Throws
// formats::Error naming the file.
void write_output(const std::string& path, const std::string& text);

}  // namespace cdma::cli
