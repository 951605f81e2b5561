// The `cdma <verb>` front door: each verb lives in its own cmd_*.cpp and registers itself here.
#pragma once

#include <string>
#include <vector>

namespace cdma::cli {

// Runs a verb: argv[0] is the verb's name ("info"), the rest its arguments. Returns the exit code.
using VerbFn = int (*)(int argc, char** argv);

struct Verb {
  std::string name;
  std::string summary;  // one line for `cdma --help`
  VerbFn run;
};

bool register_verb(Verb v);
const std::vector<Verb>& verbs();

// Exit codes shared by every verb.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // bad input, unreadable file, failed check
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitInterrupted = 130;

}  // namespace cdma::cli

// Registers a verb at static-initialisation time (cmd files are linked into the executable).
#define CDMA_REGISTER_VERB(NAME, SUMMARY, FN) \
  static const bool cdma_verb_registered_##FN = ::cdma::cli::register_verb({NAME, SUMMARY, FN})
