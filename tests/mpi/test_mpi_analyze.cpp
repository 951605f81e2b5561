// `cdma analyze` under mpirun (issue 19): 1, 2 and 3 ranks give the JSON, CSV and table bytes of
// the single-process run; a damaged file gives the same error and exit code; a dead rank or an
// interrupted job fails without a hang and without output. Every mpirun runs under `timeout`.
#include <gtest/gtest.h>

#include "test_util.hpp"

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

using cdma::test::quote;
using cdma::test::run_command;

std::string cdma() { return quote(cdma::test::cdma_binary()); }
// CI runs as root; two cores run three ranks.
std::string mpirun(int n) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 " + quote(CDMA_MPIEXEC) +
         " --oversubscribe -np " + std::to_string(n) + " ";
}
std::string data(const std::string& f) { return quote(std::string(CDMA_SOURCE_DIR) + "/data/" + f); }

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

// The lines of `out` that cdma wrote (mpirun adds its own about non-zero exits).
std::string cdma_lines(const std::string& out) {
  std::istringstream is(out);
  std::string line, kept;
  while (std::getline(is, line))
    if (line.rfind("cdma", 0) == 0) kept += line + "\n";
  return kept;
}

class MpiAnalyze : public ::testing::Test {
 protected:
  cdma::test::TempDir dir;
  std::string path(const std::string& name) { return (dir / name).string(); }

  // The single-process run and 1..3 ranks: same exit code, same JSON, CSV and table bytes.
  void expect_same_for_any_rank_count(const std::string& inputs, const std::string& options = "") {
    const std::string args = " analyze " + inputs + " " + options;
    // (stdout to a file, stderr to the captured output)
    const auto one = run_command("(" + cdma() + args + " --json " + quote(path("one.json")) + " --csv " +
                                 quote(path("one.csv")) + " > " + quote(path("one.txt")) + ")");
    for (int n : {1, 2, 3}) {
      const std::string tag = "np" + std::to_string(n);
      const auto r = run_command("(" + mpirun(n) + cdma() + args + " --json " + quote(path(tag + ".json")) + " --csv " +
                                 quote(path(tag + ".csv")) + " > " + quote(path(tag + ".txt")) + ")");
      EXPECT_EQ(r.exit_code, one.exit_code) << tag << ": " << r.output;
      EXPECT_EQ(cdma_lines(r.output), cdma_lines(one.output)) << tag;
      const std::string json = slurp(path(tag + ".json"));
      EXPECT_GT(json.size(), 100u) << tag;
      EXPECT_TRUE(json == slurp(path("one.json"))) << tag << ": JSON differs from the single-process run";
      EXPECT_TRUE(slurp(path(tag + ".csv")) == slurp(path("one.csv"))) << tag << ": CSV differs";
      EXPECT_TRUE(slurp(path(tag + ".txt")) == slurp(path("one.txt"))) << tag << ": table differs";
    }
  }

  std::string synth(const std::string& name, const std::string& args) {
    const auto r = run_command(cdma() + " synth -o " + quote(path(name)) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return quote(path(name));
  }
};

TEST_F(MpiAnalyze, DataTracesSameBytesForOneTwoThreeRanks) {
  expect_same_for_any_rank_count(data("vgg-fmnist.h5") + " " + data("squeezenet-fmnist.h5"));
}

TEST_F(MpiAnalyze, SyntheticSetSameBytesWithVariantsAndThreads) {
  // Files of very different sizes (one holds most bytes: it must split across ranks), dtypes,
  // layouts, chunks and two threads per rank.
  const std::string files =
      synth("s1.h5", "--layers 2 --iterations 2 --shape 2,8,8,8 --seed 3") + " " +
      synth("s2.h5", "--layers 6 --iterations 5 --shape 8,32,16,16 --density 0.2,0.7,0,1,0.5,0.9") + " " +
      synth("s3.h5", "--layers 3 --iterations 1 --shape 4,512 --dtype float16 --seed 9");
  expect_same_for_any_rank_count(files, "-j 2 --layouts stored,NHWC --dtypes stored,float16 --chunk 4K --by tensor");
}

TEST_F(MpiAnalyze, DamagedFileSameErrorAndExitCode) {
  // A truncated copy of a real trace: the open fails, on every rank alike.
  const std::string src = std::string(CDMA_SOURCE_DIR) + "/data/vgg-fmnist.h5";
  ASSERT_EQ(run_command("head -c 200000 " + quote(src) + " > " + quote(path("cut.h5"))).exit_code, 0);
  const std::string inputs = data("squeezenet-fmnist.h5") + " " + quote(path("cut.h5"));
  const auto one = run_command(cdma() + " analyze -q " + inputs);
  ASSERT_EQ(one.exit_code, 1) << one.output;
  ASSERT_NE(one.output.find("cut.h5"), std::string::npos) << one.output;
  for (int n : {2, 3}) {
    const auto r = run_command(mpirun(n) + cdma() + " analyze -q " + inputs);
    EXPECT_EQ(r.exit_code, one.exit_code) << r.output;                         // not 124: no hang
    EXPECT_EQ(cdma_lines(r.output), cdma_lines(one.output)) << n << " ranks";  // once, from rank 0
  }
  // With -k: the same skip, once, the same JSON and exit code 1.
  expect_same_for_any_rank_count(inputs, "-k -q");
}

// A file that crashes HDF5 is isolated in a child of the rank (the trace reader's probe): the
// rank reports the crash as an error, and the child dies without the Open MPI backtrace that the
// rank's own crash handlers (installed by MPI_Init) would print (issue 29).
TEST_F(MpiAnalyze, CrashOfTheIsolatedProbePrintsNoMpiBacktrace) {
  const std::string bad = quote(std::string(CDMA_SOURCE_DIR) + "/tests/formats/hdf5_segv_vlen_attr.h5");
  const auto r = run_command(mpirun(2) + cdma() + " analyze -q " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the HDF5 library crashed"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Process received signal"), std::string::npos) << r.output;
}

// The process ids (one per line) of the ranks whose command line names `json` and whose
// environment says OMPI_COMM_WORLD_RANK=`rank` (any rank when empty).
std::string rank_pids(const std::string& json, const std::string& rank) {
  const std::string want = rank.empty() ? "grep -q '^OMPI_COMM_WORLD_RANK='" : "grep -qx OMPI_COMM_WORLD_RANK=" + rank;
  return run_command("for p in $(pgrep -f -- " + quote(json) +
                     "); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | " + want + " && echo $p; done")
      .output;
}

// Waits until `n` ranks of the run writing `json` are running, then 0.5 s more, and signals those
// of `rank` (all when empty) with `sig`.
void signal_ranks(const std::string& json, const std::string& rank, int n, int sig) {
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string all = rank_pids(json, "");
    if (std::count(all.begin(), all.end(), '\n') < n) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::istringstream is(rank_pids(json, rank));
    for (long pid; is >> pid;) ::kill(static_cast<pid_t>(pid), sig);
    return;
  }
  ADD_FAILURE() << "the ranks of " << json << " never showed up";
}

TEST_F(MpiAnalyze, DeadRankFailsTheRunWithoutHangOrOutput) {
  const std::string big = synth("big.h5", "--bytes 96M --layers 4");
  const std::string json = path("dead.json");
  // Two ranks, one thread each, zlib-9: several seconds of work; rank 1 is killed after the start.
  const std::string cmd = mpirun(2) + cdma() + " analyze -q -j 1 -c zlib-9 --json " + quote(json) + " " + big;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread killer([&] { signal_ranks(json, "1", 2, SIGKILL); });
  const auto r = run_command(cmd);
  killer.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out: " << r.output;
  EXPECT_LT(s, 60.0);
  EXPECT_NE(r.output.find("exited on signal 9"), std::string::npos) << r.output;  // mpirun says which rank
  EXPECT_FALSE(std::filesystem::exists(json)) << "a dead rank left an output";
}

TEST_F(MpiAnalyze, InterruptedRanksWriteNothing) {
  // SIGINT to every rank, as srun forwards Ctrl-C: each stops reading, rank 0 says so and writes
  // nothing, every rank exits 130.
  const std::string big = synth("big.h5", "--bytes 96M --layers 4");
  const std::string json = path("int.json");
  const std::string cmd = mpirun(2) + cdma() + " analyze -q -j 1 -c zlib-9 --json " + quote(json) + " " + big;
  std::thread interrupter([&] { signal_ranks(json, "", 2, SIGINT); });
  const auto r = run_command(cmd);
  interrupter.join();
  EXPECT_EQ(r.exit_code, 130) << r.output;
  EXPECT_EQ(cdma_lines(r.output), "cdma analyze: interrupted; no output written\n") << r.output;
  EXPECT_FALSE(std::filesystem::exists(json));
}

TEST_F(MpiAnalyze, TimingReportsEveryRank) {
  const auto r = run_command(mpirun(3) + cdma() + " analyze -q --timing " + data("vgg-fmnist.h5"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int rank : {0, 1, 2})
    EXPECT_NE(r.output.find("timing: rank=" + std::to_string(rank) + " tensors=["), std::string::npos) << r.output;
}

}  // namespace
