// What `cdma analyze` does around the analysis, in one process or as rank 0 of an MPI job
// (analyze_mpi.cpp): the progress bar, the stop flag of Ctrl-C, the --timing lines, and writing the
// outputs and the skipped/warning lines.
#pragma once

#include <cdma/analyze/aggregate.hpp>
#include <cdma/analyze/options.hpp>
#include <cdma/analyze/pipeline.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace cdma::cli {

// The command line's choices about output.
struct AnalyzeOutputs {
  std::string json_path, csv_path;  // empty: not asked
  bool long_csv = false, quiet = false, timing = false, show_progress = false;
  analyze::Level level = analyze::Level::layer;
};

// Set by Ctrl-C (SIGINT) while a StopOnSigint is alive: the run stops reading tensors.
std::atomic<bool>& analyze_stop_flag();

// Installs the SIGINT handler for its lifetime (a second Ctrl-C ends the process at once).
class StopOnSigint {
 public:
  StopOnSigint();
  ~StopOnSigint();
  StopOnSigint(const StopOnSigint&) = delete;
  StopOnSigint& operator=(const StopOnSigint&) = delete;

 private:
  void (*old_)(int);
};

// The progress bar on stderr; `final` clears it.
void draw_progress(const analyze::Progress& p, bool final);

// The --timing line (key=value, for bench/analyze_throughput.sh) of a run's totals.
void print_timing(const analyze::RunStats& s);

// Writes the JSON, CSV and table the command line asked for, then one stderr line per skipped
// object and warning. Returns the exit code: kExitFailure when an output failed or anything was
// skipped, else kExitOk.
int write_results(const analyze::Analysis& result, const AnalyzeOutputs& out);

// True when this process looks started by an MPI launcher: mpirun/mpiexec (Open MPI's
// OMPI_COMM_WORLD_SIZE, MPICH's PMI_SIZE) or Slurm's srun with PMI-2 or PMIx (PMI_SIZE, PMIX_RANK).
bool mpi_launched();

}  // namespace cdma::cli
