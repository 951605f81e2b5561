// Small helpers shared by the cdma verbs.
#pragma once

#include <cdma/formats/text.hpp>

#include <string>

namespace cdma::cli {

using formats::human_bytes;  // shared with the analyzer's tables and the report

// Writes `text` to `path` via a temporary file and a rename, so that a failed or interrupted run
// never leaves a half-written file under the final name. "-" writes to stdout. Throws
// formats::Error naming the file.
void write_output(const std::string& path, const std::string& text);

}  // namespace cdma::cli
