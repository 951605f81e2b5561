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
#include <cstdlib>
#include <cstring>
#include <functional>
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

// Runs `f` in a child limited to `limit` bytes per file, then ends the child with std::exit(7)
// (atexit handlers run, HDF5's termination among them). Returns 7 when the child exited so, the
// negated signal when one ended it, another exit code otherwise.
int exit_after_in_child(const std::function<void()>& f, rlim_t limit) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit l{limit, limit};
    setrlimit(RLIMIT_FSIZE, &l);
    try {
      f();
    } catch (const std::exception&) {
    }
    std::exit(7);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1000;
}

// A writer whose writes failed (in its constructor, in an append, at close or in its destructor)
// releases its HDF5 ids, and the process exits normally: HDF5 1.10 keeps the id of a file whose
// close failed (its last metadata could not be written) and its termination at exit closed it
// again and crashed (SIGSEGV in H5F__close_cb).
TEST(TraceDiskFull, ProcessExitsNormallyAfterAFailedWrite) {
  test::TempDir dir;
  const auto p = dir / "full.h5";
  TraceAttrs a;
  a.producer = "test";
  a.source = "synthetic";
  // The constructor fails (its first flush would pass the limit) after the file was created.
  for (rlim_t limit : {100, 3000, 5000})
    EXPECT_EQ(exit_after_in_child(
                  [&] {
                    TraceWriter w(p, a, WriterOptions{true, 0, 1});
                  },
                  limit),
              7)
        << "limit " << limit;
  // An append fails; close() or the destructor ends the writer.
  for (Ending e : {Ending::close, Ending::destructor})
    EXPECT_EQ(exit_after_in_child([&] { fill_until_full(p, e); }, 600 * 1024), 7);
  // The failed writer left the tensors appended before (checked in the tests above) and the
  // library still works in the parent.
  EXPECT_EQ(exit_after_in_child([] {}, RLIM_INFINITY), 7);
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

// close(false): a producer that stopped before its run ended (an exception) closes the trace with
// complete = 0; everything appended (tensors and rows) is written and reads, with the warning.
TEST(TraceIncomplete, CloseWithoutCompleteKeepsEverythingReadable) {
  test::TempDir dir;
  const auto p = dir / "stopped.h5";
  {
    TraceAttrs a;
    a.producer = "test";
    a.source = "synthetic";
    TraceWriter w(p, a, WriterOptions{true, 0, 0});  // no flush points: close() writes it all
    std::vector<float> data(16384, 1.0f);
    for (int i = 0; i < 3; ++i) w.append_tensor(tensor_meta(i, 16384), std::as_bytes(std::span<const float>(data)));
    StatsRow row;
    row.iteration = 0;
    row.layer = "l0";
    row.op = "relu";
    row.role = "x";
    row.dtype = "float32";
    row.elements = 16384;
    row.nonzeros = 16384;
    w.append_stats(row);
    w.close(false);
    EXPECT_THROW(w.close(), TraceError);  // closed once
  }
  expect_incomplete_and_readable(p, 3);
  TraceReader r(p);
  EXPECT_TRUE(r.has_stats());
  EXPECT_EQ(r.stats().size(), 1u);
}

}  // namespace
}  // namespace cdma::formats
