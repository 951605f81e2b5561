// The one output writer (output_file.hpp). POSIX calls rather than std::ofstream, so that every
// failure carries the system's reason (errno), and so that a device or FIFO is opened without
// O_CREAT or O_TRUNC and never renamed over.
#include <cdma/formats/error.hpp>
#include <cdma/formats/output_file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <streambuf>
#include <vector>

namespace cdma::formats {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxLinks = 40;             // as the kernel's path resolution (ELOOP)
constexpr long kProcSuperMagic = 0x9fa0;  // statfs f_type of /proc (linux/magic.h)
constexpr std::size_t kBufBytes = 1 << 16;

std::string reason(int err) { return std::strerror(err); }

std::string shown(const OutputTarget& t) {
  return t.path == t.given ? t.given.string() : t.given.string() + " (-> " + t.path.string() + ")";
}

[[noreturn]] void fail(const OutputTarget& t, int err) {
  throw Error("cannot write " + shown(t) + " (" + reason(err) + ")");
}

// A link that lives in /proc (/proc/self/fd/1, what /dev/stdout and /dev/fd/N lead to) names an
// open file: its "target" is not a path to replace but that file, reached only through the link.
bool in_procfs(const fs::path& link) {
  struct statfs s {};
  const fs::path dir = link.has_parent_path() ? link.parent_path() : fs::path(".");
  return ::statfs(dir.c_str(), &s) == 0 && static_cast<long>(s.f_type) == kProcSuperMagic;
}

// A streambuf over a file descriptor that keeps the errno of the first failed write.
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(kBufBytes) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return err_; }
  bool drain() { return flush_buffer(); }

 protected:
  int_type overflow(int_type c) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= epptr() - pptr()) {
      std::memcpy(pptr(), s, static_cast<std::size_t>(n));
      pbump(static_cast<int>(n));
      return n;
    }
    if (!flush_buffer() || !write_all(s, static_cast<std::size_t>(n))) return 0;
    return n;
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    const auto n = static_cast<std::size_t>(pptr() - pbase());
    setp(buf_.data(), buf_.data() + buf_.size());
    return write_all(buf_.data(), n);
  }
  bool write_all(const char* p, std::size_t n) {
    if (err_) return false;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        err_ = w < 0 ? errno : EIO;
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  int fd_;
  std::vector<char> buf_;
  int err_ = 0;
};

// Streams `fill` into `fd`; returns 0 or the errno of the first failure (the fd stays open).
// What `fill` throws propagates.
int stream_into(int fd, const std::function<void(std::ostream&)>& fill) {
  FdBuf buf(fd);
  std::ostream os(&buf);
  fill(os);
  os.flush();
  if (buf.error()) return buf.error();
  if (!os) return EIO;  // a failure of the stream itself (no system call failed)
  return 0;
}

int close_checked(int fd) {
  // close() reports delayed write errors (NFS, quota); EINTR leaves the descriptor closed on Linux.
  if (::close(fd) != 0 && errno != EINTR) return errno;
  return 0;
}

std::atomic<unsigned> g_temp_counter{0};

std::string temp_name(const fs::path& final_path) {
  return "." + final_path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
         std::to_string(g_temp_counter.fetch_add(1));
}

}  // namespace

OutputTarget resolve_output(const fs::path& path) {
  if (path.empty()) throw UsageError("an output needs a file name");
  OutputTarget t;
  t.given = path;
  t.path = path;
  struct stat st {};
  bool open_file = false;  // reached through a /proc link: the open file it names, written in place
  for (int hops = 0;; ++hops) {
    if (::lstat(t.path.c_str(), &st) != 0) {
      if (errno == ENOENT && !open_file) {
        t.kind = OutputTarget::Kind::create;
        return t;
      }
      fail(t, errno);
    }
    if (!S_ISLNK(st.st_mode)) break;
    if (hops == kMaxLinks) throw UsageError("cannot write " + path.string() + " (" + reason(ELOOP) + ")");
    if (in_procfs(t.path)) {
      open_file = true;
      if (::stat(t.path.c_str(), &st) != 0) fail(t, errno);  // e.g. /dev/stdout with stdout closed
      break;
    }
    std::vector<char> buf(PATH_MAX + 1);
    const ssize_t n = ::readlink(t.path.c_str(), buf.data(), buf.size() - 1);
    if (n < 0) fail(t, errno);
    const fs::path target(std::string(buf.data(), static_cast<std::size_t>(n)));
    t.path = target.is_absolute() || !t.path.has_parent_path() ? target : t.path.parent_path() / target;
  }
  if (S_ISDIR(st.st_mode)) throw UsageError(shown(t) + " is a directory");
  if (S_ISBLK(st.st_mode))
    throw UsageError(shown(t) + " is a block device (outputs go to regular files, character devices or FIFOs)");
  if (S_ISSOCK(st.st_mode)) throw UsageError(shown(t) + " is a socket (outputs go to regular files or FIFOs)");
  if (open_file || S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
    t.kind = OutputTarget::Kind::in_place;
  else
    t.kind = OutputTarget::Kind::regular;
  return t;
}

void write_output_file(const fs::path& path, const std::function<void(std::ostream&)>& fill) {
  const OutputTarget t = resolve_output(path);
  if (t.kind == OutputTarget::Kind::in_place) {
    struct stat st {};
    const bool regular = ::stat(t.path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    // A regular file reached through /dev/stdout & co. is appended to: it may hold what the process
    // printed before.
    const int fd = ::open(t.path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | (regular ? O_APPEND : 0));
    if (fd < 0) fail(t, errno);
    int err = 0;
    try {
      err = stream_into(fd, fill);
    } catch (...) {
      ::close(fd);
      throw;
    }
    const int cerr = close_checked(fd);
    if (err || cerr) fail(t, err ? err : cerr);
    return;
  }
  // A regular file: a temporary beside it, renamed over it once complete.
  struct stat old {};
  const bool replacing = t.kind == OutputTarget::Kind::regular && ::stat(t.path.c_str(), &old) == 0;
  fs::path tmp;
  int fd = -1;
  for (int tries = 0; fd < 0; ++tries) {
    tmp = t.path.parent_path() / temp_name(t.path);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || tries > 100))
      throw Error("cannot write " + shown(t) + ": cannot create the temporary file " + tmp.string() + " (" +
                  reason(errno) + ")");
  }
  auto discard = [&] { ::unlink(tmp.c_str()); };
  int err = 0;
  try {
    if (replacing) (void)::fchmod(fd, old.st_mode & 07777);  // the replaced file's permissions
    err = stream_into(fd, fill);
  } catch (...) {
    ::close(fd);
    discard();
    throw;
  }
  const int cerr = close_checked(fd);
  if (err || cerr) {
    discard();
    fail(t, err ? err : cerr);
  }
  if (::rename(tmp.c_str(), t.path.c_str()) != 0) {
    const int e = errno;
    discard();
    throw Error("cannot write " + shown(t) + ": cannot rename " + tmp.string() + " to it (" + reason(e) + ")");
  }
}

void write_output_file(const fs::path& path, std::string_view text) {
  write_output_file(path, [&](std::ostream& os) { os.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

fs::path regular_output_path(const fs::path& path) {
  const OutputTarget t = resolve_output(path);
  if (t.kind == OutputTarget::Kind::in_place)
    throw UsageError(shown(t) +
                     " is not a regular file (a device, a FIFO or an open file's name): a trace is written to a "
                     "regular file only, and a special file is never replaced");
  return t.path;
}

fs::path temporary_beside(const fs::path& final_path) {
  for (;;) {
    fs::path tmp = final_path.parent_path() / temp_name(final_path);
    struct stat st {};
    if (::lstat(tmp.c_str(), &st) != 0) return tmp;  // free (or unreachable: the writer says why)
  }
}

void commit_output(const fs::path& tmp, const fs::path& final_path) {
  if (::rename(tmp.c_str(), final_path.c_str()) != 0)
    throw Error("cannot write " + final_path.string() + ": cannot rename " + tmp.string() + " to it (" + reason(errno) +
                ")");
}

}  // namespace cdma::formats
