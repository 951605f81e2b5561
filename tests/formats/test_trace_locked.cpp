// A trace that a live producer holds (HDF5's file lock): the reader says it is locked by another
// process (not "truncated or damaged?"), and the documented way to read it meanwhile
// (HDF5_USE_FILE_LOCKING=FALSE) gives the tensors flushed so far with complete = 0 (issue 29).
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.hpp"

#include <vector>

namespace cdma::formats {
namespace {

std::string open_error(const std::filesystem::path& p) {
  try {
    TraceReader r(p);
  } catch (const TraceError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TraceLocked, LiveWriterIsNamedAndReadableWithLockingOff) {
  test::TempDir dir;
  const auto p = dir / "live.h5";
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the producer: one tensor appended (flushed), then waits for the parent
    int rc = 0;
    try {
      TraceAttrs a;
      a.producer = "test";
      a.source = "synthetic";
      TraceWriter w(p, a);
      std::vector<float> data(64, 1.0f);
      TensorMeta m;
      m.iteration = 0;
      m.layer = "l0";
      m.op = "relu";
      m.role = "x";
      m.layout = Layout::NC;
      m.dims = {1, 64};
      w.append_tensor(m, std::as_bytes(std::span<const float>(data)));
      char c = 1;
      if (write(ready[1], &c, 1) != 1) rc = 2;
      if (read(done[0], &c, 1) != 1) rc = 3;
      w.close();
    } catch (...) {
      rc = 4;
    }
    _exit(rc);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const std::string e = open_error(p);
  EXPECT_NE(e.find("locked by another process"), std::string::npos) << e;
  EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  EXPECT_EQ(e.find("damaged"), std::string::npos) << e;
  {
    // The documented way to read a live trace (HDF5 reads the variable when the library starts:
    // a new process).
    const auto r = test::run_command("HDF5_USE_FILE_LOCKING=FALSE " + test::quote(test::cdma_binary()) + " info " +
                                     test::quote(p.string()) + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"complete\": false"), std::string::npos) << r.output;
    const auto plain = test::run_command(test::quote(test::cdma_binary()) + " info " + test::quote(p.string()));
    EXPECT_EQ(plain.exit_code, 1) << plain.output;
    EXPECT_NE(plain.output.find("locked by another process"), std::string::npos) << plain.output;
  }
  ASSERT_EQ(write(done[1], &c, 1), 1);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  TraceReader r(p);  // closed: readable, whole
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_EQ(r.tensors().size(), 1u);
}

}  // namespace
}  // namespace cdma::formats
