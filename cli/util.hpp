// Small helpers shared by the cdma verbs: checked parsing of command-line values, outputs that
// never lose data silently, and the checks that keep an output from replacing an input.
#pragma once

#include <cdma/formats/text.hpp>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace cdma::cli {

using formats::human_bytes;  // shared with the analyzer's tables and the report

// Writes `text` to `path` via a temporary file and a rename, so that a failed or interrupted run
// never leaves a half-written file under the final name. "-" writes to stdout (flushed and
// checked). Throws formats::Error naming the file.
void write_output(const std::string& path, const std::string& text);
// The same, with the content streamed by `fill` (no copy of a large output in memory).
void write_output(const std::string& path, const std::function<void(std::ostream&)>& fill);

// Flushes stdout (stdio and iostreams) and throws formats::Error when any write to it failed
// (disk full, closed pipe), so that a verb never exits 0 having lost its output.
void finish_stdout();

// A byte size in cdma's one grammar (formats/byte_size.hpp: digits with an optional unit B, K/KiB,
// M/MiB, G/GiB, T/TiB, binary; no sign, no fraction; at most 2^62). Throws formats::Error naming
// `option`.
std::uint64_t parse_byte_size(const std::string& text, const std::string& option);

// An output FILE given to `option` (e.g. "--json"): "-" (stdout) or a path.
struct OutputArg {
  std::string option;
  std::string path;
};
// Throws formats::Error (a command-line error) when an output path is empty, names the same file
// as an input or as another output, or names a directory. "-" may appear once.
void check_outputs(const std::vector<std::string>& inputs, const std::vector<OutputArg>& outputs);

}  // namespace cdma::cli
