// Small helpers shared by the cdma verbs: checked parsing of command-line values, outputs that
// never lose data silently, and the checks that keep an output from replacing an input.
#pragma once

#include <cdma/formats/text.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace cdma::cli {

using formats::human_bytes;  // shared with the analyzer's tables and the report

// Writes `text` to `path` by the rules of formats::write_output_file (output_file.hpp): a regular
// file via a temporary file and a rename (a failed or interrupted run never leaves a half-written
// file under the final name), a symlink's target, a device or FIFO in place; every write error
// reported. "-" writes to stdout (flushed and checked). Throws formats::Error naming the file.
void write_output(const std::string& path, const std::string& text);
// The same, with the content streamed by `fill` (no copy of a large output in memory).
void write_output(const std::string& path, const std::function<void(std::ostream&)>& fill);

// Flushes stdout (stdio and iostreams) and throws formats::Error when any write to it failed
// (disk full, closed pipe), so that a verb never exits 0 having lost its output.
void finish_stdout();

// A CLI11 check of a number option: finite and within [lo, hi] (CLI::Range lets NaN through, since
// every comparison with NaN is false). Refused values are command-line errors (exit 2).
CLI::Validator finite_between(double lo, double hi);

// A byte size in cdma's one grammar (formats/byte_size.hpp: digits with an optional unit B, K/KiB,
// M/MiB, G/GiB, T/TiB, binary; no sign, no fraction; at most 2^62). Throws formats::Error naming
// `option`.
std::uint64_t parse_byte_size(const std::string& text, const std::string& option);

// The first input file of `paths` that cannot be opened, as a sentence naming it ("x.h5: no such
// file"); nullopt when every one exists. Verbs check their inputs first so that a missing input is
// bad input (exit 1) for every verb, named the same way, before any work.
std::optional<std::string> missing_input(const std::vector<std::string>& paths);

// A trace argument that does not exist and is a codec name (`--codecs zvc lz4` leaves lz4 among the
// traces: list options take one comma-separated value in every verb), as a command-line error
// sentence naming it and the comma form; nullopt otherwise.
std::optional<std::string> codec_word_among_traces(const std::vector<std::string>& paths);

// The --engine values with the codec made explicit (PLACEMENT -> PLACEMENT:zvc); throws
// formats::UsageError when one engine is named twice (it would give two identical columns).
std::vector<std::string> distinct_engines(const std::vector<std::string>& engines);

// An output FILE given to `option` (e.g. "--json"): "-" (stdout) or a path.
struct OutputArg {
  std::string option;
  std::string path;
};
// Throws formats::Error (a command-line error) when an output path is empty, names the same file
// as an input or as another output, or names what cannot be an output (a directory, a block
// device, a loop of links: formats::resolve_output). "-" may appear once.
void check_outputs(const std::vector<std::string>& inputs, const std::vector<OutputArg>& outputs);

}  // namespace cdma::cli
