// One analysis run split into parts that separate processes run (`cdma analyze` under MPI,
// docs/MPI.md). Every part opens every trace and plans the whole run from metadata (cheap), then
// analyses only its own contiguous, byte-balanced range of the planned tensors; merge_parts()
// assembles the parts into exactly the Analysis that run_analysis() gives, so that write_json,
// write_csv and write_table give the same bytes for any number of parts. run_analysis() itself is
// the one-part case.
#pragma once

#include <cdma/analyze/pipeline.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdma::analyze {

// Cuts `bytes` (the planned tensors' sizes, in run order) into `parts` >= 1 contiguous ranges of
// about equal byte sums: part p takes [cuts[p], cuts[p + 1]), cuts.front() == 0, cuts.back() ==
// bytes.size(). A cut falls at the tensor boundary nearest to p/parts of the total (a tensor is not
// split), so one huge tensor makes its range big and others may be empty.
std::vector<std::size_t> split_by_bytes(const std::vector<std::uint64_t>& bytes, std::size_t parts);

// Something --keep-going left out of one planned tensor (slot: its place in the plan).
struct SlotSkip {
  std::uint64_t slot = 0;
  Skipped skip;
};

// One trace as one part saw it. `summary` holds what planning and the /stats rows give (the same
// in every part), with `tensors` counting this part's range only and `skipped` empty: the skips
// are kept apart, by kind, so that merge_parts() can restore the whole run's order (planning's,
// the reader's, the /stats rows', the workers').
struct PartTrace {
  TraceSummary summary;
  std::vector<Skipped> plan_skips;     // the same in every part
  std::vector<SlotSkip> read_skips;    // this part's range
  std::vector<Skipped> stats_skips;    // the same in every part
  std::vector<SlotSkip> worker_skips;  // this part's range
  std::vector<TensorResult> stats;     // its analysed /stats rows (every part analyses them: cheap)
};

// The error that stopped a part, with its position in the whole run's order (0 = before any
// tensor: options, opening a trace, planning), so that the parts' errors can be ranked.
struct PartError {
  std::uint64_t order = 0;
  bool verify = false;       // a VerifyError (round-trip mismatch)
  std::string message;       // what() of the error
  std::exception_ptr local;  // the error itself, in the process that met it (not encoded)
};

struct Part {
  int index = 0, count = 1;
  std::uint64_t first_slot = 0, last_slot = 0;  // this part's range of the plan
  std::uint64_t planned = 0;                    // tensors in the whole plan
  std::uint64_t plan_digest = 0;                // of the traces' plan (every part must see the same)
  std::vector<std::string> codec_names;
  std::vector<Variant> variants;
  std::vector<PartTrace> traces;
  std::vector<TensorResult> tensors;  // this part's analysed tensors, in run order
  bool interrupted = false;
  RunStats stats;  // this part's (bytes, times): what `--timing` prints per rank
  std::optional<PartError> error;
};

// Runs part `index` of `count` (0 <= index < count): plans the whole run and analyses the slots
// [cuts[index], cuts[index + 1]) of split_by_bytes(), with opts.threads workers as run_analysis()
// does. Never throws (other processes still wait for this part): an error that stops the part is
// in Part::error. hooks.on_progress counts this part's range only.
Part run_part(const std::vector<std::filesystem::path>& paths, Options opts, const RunHooks& hooks, int index,
              int count);

// The Analysis of the whole run from all its parts (in any order, each index once). `opts` are the
// options the parts ran with. Throws the error of the part whose error comes first in run order
// (the error itself when that part ran here, else a formats::Error or VerifyError with its
// message), and formats::Error when the parts do not fit together (missing, duplicate or
// overlapping parts, different plans: the processes did not see the same files).
Analysis merge_parts(std::vector<Part> parts, Options opts);

// A part as bytes, for sending to another process, and back (exact: integers as they are,
// doubles by their bits). decode_part throws formats::Error on bytes encode_part did not write.
std::string encode_part(const Part& p);
Part decode_part(std::string_view bytes);

}  // namespace cdma::analyze
