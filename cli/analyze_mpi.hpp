// `cdma analyze` as one rank of an MPI job (docs/MPI.md): every rank plans the whole run and
// analyses its own byte-balanced range of the tensors (analyze::run_part); rank 0 gathers the
// parts, merges them into the Analysis a single process would give, and writes the outputs.
#pragma once

#include "analyze_io.hpp"

#include <cdma/analyze/options.hpp>

#include <string>
#include <vector>

namespace cdma::cli {

// Runs `cdma analyze` as a rank of the MPI job this process belongs to (MPI_Init here, MPI_Finalize
// before returning) and returns the exit code, the same on every rank: the one a single-process
// run gives for the same inputs (rank 0 reports errors, skips and warnings once). In a build
// without MPI (CDMA_WITH_MPI off) it says so and returns kExitUsage.
int run_analyze_mpi(const std::vector<std::string>& paths, analyze::Options opts, const AnalyzeOutputs& out);

}  // namespace cdma::cli
