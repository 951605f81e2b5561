// The analysis run over one or many traces: one reader thread (HDF5 is serial), a bounded set of
// tensors in flight, worker threads for the codecs, results in capture order whatever the thread
// count.
#pragma once

#include <cdma/analyze/aggregate.hpp>
#include <cdma/analyze/options.hpp>
#include <cdma/analyze/tensor.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cdma::analyze {

// The most worker threads a run accepts (Options::threads); 0 there means one per core, capped here.
inline constexpr unsigned kMaxThreads = 1024;

// Something --keep-going left out: the object ("/", "/tensors/0000000042", "/stats[3]") and why.
struct Skipped {
  std::string object;
  std::string reason;
};

struct TraceSummary {
  int index = 0;
  std::string path;
  bool opened = false;
  std::optional<std::string> model;
  std::string source;
  bool complete = false;
  std::int64_t tensors = 0;     // tensors with bytes analysed
  std::int64_t stats_rows = 0;  // /stats rows analysed
  std::int64_t filtered_out = 0;
  std::int64_t not_offloaded = 0;  // of filtered_out: recorded, but not in the offload set
  // The producer wrote `offload` attributes (so its offload set is stated, network input included),
  // rather than leaving the format's default rule to apply.
  bool offload_attribute = false;
  std::vector<Skipped> skipped;
  std::vector<std::string> warnings;  // the reader's non-fatal findings (e.g. complete = 0)
};

// Where the time went (not part of the JSON, which must not depend on the machine).
struct RunStats {
  unsigned threads = 0;
  double wall_s = 0;
  double cpu_s = 0;                  // CPU time of the whole process during the run (all threads)
  double codec_s = 0;                // CPU time inside zero scans and codec calls, summed over workers
  double read_s = 0;                 // CPU time reading: TraceReader::read_into, or faulting mapped pages in
  std::uint64_t mapped_tensors = 0;  // tensors the workers read straight from the file (mapped, or pread)
  std::uint64_t bytes = 0;           // stored bytes of the analysed tensors
};

struct Analysis {
  Options options;  // validated (canonical codec names)
  std::vector<Variant> variants;
  std::vector<std::string> codec_names;
  std::vector<TraceSummary> traces;
  std::vector<TensorResult> tensors;  // trace order, then capture order, then /stats rows
  bool interrupted = false;           // the stop flag was raised: results are partial
  RunStats stats;

  // The variant of the stored layout and dtype, when the options asked for it.
  std::optional<std::size_t> stored_variant() const {
    for (std::size_t v = 0; v < variants.size(); ++v)
      if (variants[v].layout == "stored" && variants[v].dtype == "stored") return v;
    return std::nullopt;
  }
  // The rows of a level (of one variant only, when given).
  std::vector<GroupRow> rows(Level level, std::optional<std::size_t> variant = std::nullopt) const {
    return aggregate(tensors, level, variants.size(), codec_names.size(), variant);
  }
};

struct Progress {
  std::uint64_t bytes_done = 0, bytes_total = 0;
  std::uint64_t tensors_done = 0, tensors_total = 0;
};

struct RunHooks {
  // Called from the calling thread, at most about 10 times a second, and once at the end.
  std::function<void(const Progress&)> on_progress;
  // When it becomes true, no further tensor is read; tensors in flight are finished.
  const std::atomic<bool>* stop = nullptr;
  // Called from the calling thread once a trace is opened for the workers (mapped, or opened for
  // pread), before any of its tensors' bytes are read. For tests: a file that shrinks under a run.
  std::function<void(const std::filesystem::path&)> on_opened;
};

// Analyses every tensor and /stats row of `paths` that passes the filters. Throws formats::Error
// (TraceError naming file and object) on the first unreadable file or tensor unless
// opts.keep_going, in which case it is listed in TraceSummary::skipped; throws VerifyError on a
// round-trip mismatch in any case.
Analysis run_analysis(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks = {});

// When the filters left every tensor and /stats row out (and nothing was skipped or interrupted),
// the sentence that says so: an empty table would look like a result, so the CLI (exit 2), the
// report and cdma.analysis() refuse with it. Empty otherwise.
std::optional<std::string> nothing_selected(const Analysis& a);

}  // namespace cdma::analyze
