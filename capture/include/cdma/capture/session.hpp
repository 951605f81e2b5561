// A capture session, the whole of `cdma capture` but its command line: check the interposer
// settings, make a spool folder, run the command with the interposer preloaded, wait for it,
// convert the spool of every traced process into a trace, and remove the spools. Or, with
// `convert`, only convert spools written elsewhere.
//
// Prints nothing and never exits: progress and warnings go to SessionOptions::on_message, each
// written trace to on_trace, and everything is in the SessionResult.
#pragma once

#include <cdma/capture/collector.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cdma::capture {

// A session setting is not valid (what() is set_option()'s message, e.g. a bad mode or size): the
// caller's input is wrong, so command lines exit 2 (formats::UsageError).
class SettingError : public formats::UsageError {
 public:
  using formats::UsageError::UsageError;
};

struct SessionOptions {
  // The command and its arguments (argv[0] searched in PATH); with `convert`, spool files and
  // folders holding cdma-*.spool files.
  std::vector<std::string> command;
  bool convert = false;
  std::filesystem::path output;  // the trace; with several spools <stem>.<pid>.h5 each. Empty: default_trace_name()
  // Interposer settings as environment variables (CDMA_CAPTURE_MODE, ...), checked with the
  // interposer's own parser (config.hpp) and passed to the command.
  std::vector<std::pair<std::string, std::string>> settings;
  std::filesystem::path preload;    // the interposer; empty: default_preload_library()
  std::filesystem::path spool_dir;  // empty: <output>.spool-<pid of this process>
  bool keep_spool = false;          // keep the spools after a successful conversion
  ConvertOptions convert_options;   // `command` is filled with the command line when empty
  // Progress and warnings, one sentence each (no prefix, no newline).
  std::function<void(const std::string&)> on_message;
  // Called once per trace written, as soon as it is.
  std::function<void(const ConvertSummary&)> on_trace;
};

struct SessionResult {
  std::filesystem::path output;        // the trace path asked for (or the default one)
  std::vector<ConvertSummary> traces;  // in spool name order
  std::vector<std::string> errors;     // conversions that failed, one message each
  LaunchResult launched;               // the command's end (exit_code 0 with convert)
  std::filesystem::path spool_dir;     // where the spools went (empty with convert)
  bool spools_kept = false;            // they are still there (keep_spool, or a conversion failed)

  bool failed() const noexcept { return !errors.empty(); }
  // The exit status of `cdma capture`: with convert 1 if a conversion failed, else 0; else the
  // command's own, or 1 if it exited 0 but a conversion failed.
  int exit_status() const noexcept;
};

// Runs a session. Throws SettingError for a bad setting (before anything runs), CaptureError when
// the interposer is missing, the spool folder cannot be made or the command cannot be started. A
// failing conversion does not throw: it is in SessionResult::errors (and on_message).
SessionResult run_session(const SessionOptions& opts);

// capture-<date>-<time>.h5 (local time).
std::string default_trace_name();

// The trace path for `spool` when a session converts `n` spools: `output` itself when n <= 1,
// else <output stem>.<pid>.h5 beside it (from the spool's name cdma-<pid>[-k].spool).
std::filesystem::path trace_path_for(const std::filesystem::path& output, const std::filesystem::path& spool,
                                     std::size_t n);

}  // namespace cdma::capture
