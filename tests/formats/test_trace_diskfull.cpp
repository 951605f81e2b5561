// A write that fails on a full disk: the trace stays complete = 0, holds the tensors appended before
// the failure, and reads (with the "complete = 0" warning); close() and the destructor never mark it
// complete; appends after the failure are refused. The disk fills up two ways: a file size limit
// (RLIMIT_FSIZE, in a child process: write() fails with EFBIG; works anywhere) and, where this
// process may mount (root), a real 1 MiB tmpfs (write() fails with ENOSPC).
#include <cdma/formats/error.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.hpp"

#include <csignal>
#include <cstring>
#include <vector>

namespace cdma::formats {
namespace {

TensorMeta tensor_meta(int i, std::int64_t elements) {
  TensorMeta m;
  m.iteration = 0;
  m.layer = "l" + std::to_string(i);
  m.layer_index = i;
  m.op = "relu";
  m.role = "x";
  m.layout = Layout::NC;
  m.dims = {1, elements};
  m.offload = true;
  return m;
}

enum class Ending { close, destructor };

// Appends 64 KiB tensors until one fails (at most 200), then appends once more (must be refused)
// and ends the writer. Returns the number appended, or -1 when nothing failed, -2 when the failure
// or the ending did not behave.
int fill_until_full(const std::filesystem::path& p, Ending ending) {
  int ok = 0;
  bool failed = false;
  {
    TraceAttrs a;
    a.producer = "test";
    a.source = "synthetic";
    TraceWriter w(p, a, WriterOptions{true, 0, 1});
    std::vector<float> data(16384, 1.0f);
    for (int i = 0; i < 200 && !failed; ++i) {
      try {
        w.append_tensor(tensor_meta(i, 16384), std::as_bytes(std::span<const float>(data)));
        ++ok;
      } catch (const TraceError& e) {
        failed = true;
        if (std::string(e.what()).find(p.string()) == std::string::npos) return -2;  // names the file
      }
    }
    if (!failed) return -1;
    try {  // refused: the trace can no longer be whole
      w.append_tensor(tensor_meta(999, 1), std::as_bytes(std::span<const float>(data.data(), 1)));
      return -2;
    } catch (const TraceError& e) {
      if (std::string(e.what()).find("earlier write failed") == std::string::npos) return -2;
    }
    if (ending == Ending::close) {
      try {
        w.close();
        return -2;  // close() must report that the trace is incomplete
      } catch (const TraceError& e) {
        if (std::string(e.what()).find("complete = 0") == std::string::npos) return -2;
      }
    }
  }  // Ending::destructor: the destructor closes
  return ok;
}

// Checks the file a failed writer left: complete = 0 with its warning, the tensors appended before
// the failure, each readable.
void expect_incomplete_and_readable(const std::filesystem::path& p, int appended) {
  ASSERT_GT(appended, 0);
  TraceReader r(p);
  EXPECT_FALSE(r.attrs().complete);
  ASSERT_EQ(static_cast<int>(r.tensors().size()), appended);
  bool warned = false;
  for (const auto& w : r.warnings()) warned = warned || w.find("complete = 0") != std::string::npos;
  EXPECT_TRUE(warned);
  for (const auto& t : r.tensors()) {
    const auto bytes = r.read(t);
    ASSERT_EQ(bytes.size(), 65536u);
    float first = 0;
    std::memcpy(&first, bytes.data(), sizeof first);
    EXPECT_EQ(first, 1.0f) << t.name;
  }
}

// Runs fill_until_full in a child limited to `limit` bytes per file; returns its result.
int fill_in_child(const std::filesystem::path& p, Ending ending, rlim_t limit) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG instead of killing the process
    rlimit l{limit, limit};
    setrlimit(RLIMIT_FSIZE, &l);
    const int n = fill_until_full(p, ending);
    _exit(n < 0 ? 200 + (-n) : n);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st)) return -3;
  const int code = WEXITSTATUS(st);
  return code > 200 ? -(code - 200) : code;
}

TEST(TraceDiskFull, FileSizeLimitLeavesIncompleteReadableTrace) {
  for (Ending e : {Ending::close, Ending::destructor}) {
    test::TempDir dir;
    const auto p = dir / "full.h5";
    const int n = fill_in_child(p, e, 600 * 1024);
    ASSERT_GT(n, 0) << "child result " << n << " (-1: no write failed, -2: wrong behaviour, -3: signal)";
    expect_incomplete_and_readable(p, n);
  }
}

TEST(TraceDiskFull, SmallTmpfs) {
  test::TempDir dir;
  const auto mnt = dir / "mnt";
  std::filesystem::create_directory(mnt);
  if (geteuid() != 0 || mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (not root, or no permission); the file size limit test covers this";
  struct Unmount {
    std::filesystem::path p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  for (Ending e : {Ending::close, Ending::destructor}) {
    const auto p = mnt / "full.h5";
    const int n = fill_until_full(p, e);
    ASSERT_GT(n, 0) << "result " << n << " (-1: no write failed, -2: wrong behaviour)";
    // Read from a copy on a disk with room (reading needs no space, but the copy also shows the
    // file is whole as it lies).
    const auto copy = dir / "copy.h5";
    std::filesystem::copy_file(p, copy, std::filesystem::copy_options::overwrite_existing);
    expect_incomplete_and_readable(copy, n);
    expect_incomplete_and_readable(p, n);
    std::filesystem::remove(p);
  }
}

}  // namespace
}  // namespace cdma::formats
