// run_analyze_mpi in a build without MPI (CDMA_WITH_MPI off, or no MPI found by CMake).
#include "analyze_mpi.hpp"

#include "verbs.hpp"

#include <fmt/core.h>

#include <cstdio>

namespace cdma::cli {

int run_analyze_mpi(const std::vector<std::string>&, analyze::Options, const AnalyzeOutputs&) {
  fmt::print(stderr,
             "cdma analyze: error: this cdma was built without MPI, so it cannot share the work with other "
             "processes (started by mpirun, mpiexec or srun, or --mpi always); rebuild with MPI found "
             "(CDMA_WITH_MPI, docs/MPI.md), or run one process with --mpi never\n");
  return kExitUsage;
}

}  // namespace cdma::cli
