// A writer killed with SIGKILL mid-trace leaves a file that the reader and h5py open, holding every
// tensor written before the last flush point, byte for byte.
#include "test_util.hpp"
#include "trace_fixture.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <thread>

using namespace cdma;
using namespace cdma::formats;

namespace {

constexpr std::int64_t kSide = 256;  // 1 x 4 x 256 x 256 fp32 = 1 MiB per tensor

TensorMeta crash_meta(int i) {
  auto m = test::make_meta(DType::f32, Layout::NCHW, i, i % 5);
  m.dims = {1, 4, kSide, kSide};
  return m;
}

[[noreturn]] void writer_child(const std::filesystem::path& path, int fd) {
  try {
    TraceWriter w(path, test::test_attrs());
    for (int i = 0;; ++i) {
      auto m = crash_meta(i);
      w.append_tensor(m, test::random_bytes(static_cast<std::size_t>(m.bytes()), static_cast<unsigned>(i)));
      TimelineRow r;
      r.call = i;
      w.append_timeline(r);
      if (write(fd, &i, sizeof i) != sizeof i) _exit(3);
    }
  } catch (...) {
    _exit(2);
  }
}

class Crash : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(Crash, KilledWriterLeavesReadableTrace) {
  auto [written_before_kill, delay_us] = GetParam();
  test::TempDir dir;
  auto path = dir / "crash.h5";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    writer_child(path, fds[1]);
  }
  close(fds[1]);
  int last = -1;
  for (int k = 0; k < written_before_kill; ++k) ASSERT_EQ(read(fds[0], &last, sizeof last), (ssize_t)sizeof last);
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));  // land somewhere inside the next write
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(st)) << "writer exited on its own with " << WEXITSTATUS(st);

  TraceReader r(path);
  EXPECT_FALSE(r.attrs().complete);
  ASSERT_FALSE(r.warnings().empty());
  // Every tensor acknowledged before the kill is there; at most the one in flight is lost.
  ASSERT_GE(static_cast<int>(r.tensors().size()), last + 1);
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    auto m = crash_meta(static_cast<int>(i));
    ASSERT_EQ(r.tensors()[i].dims, m.dims);
    EXPECT_EQ(r.read(r.tensors()[i]), test::random_bytes(static_cast<std::size_t>(m.bytes()), static_cast<unsigned>(i)))
        << "tensor " << i;
  }
  auto res =
      test::run_command(test::h5py_python() + " " + test::quote(std::string(CDMA_TEST_FORMATS_DIR) + "/h5py_list.py") +
                        " " + test::quote(path.string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_EQ(std::stoi(res.output), static_cast<int>(r.tensors().size()));
}

INSTANTIATE_TEST_SUITE_P(KillPoints, Crash,
                         ::testing::Values(std::pair{1, 0}, std::pair{2, 300}, std::pair{3, 1500}, std::pair{5, 50},
                                           std::pair{8, 3000}, std::pair{4, 800}));

}  // namespace
