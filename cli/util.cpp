#include "util.hpp"

#include <cdma/formats/byte_size.hpp>
#include <cdma/formats/error.hpp>

#include <fmt/core.h>

#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace cdma::cli {

namespace fs = std::filesystem;

void finish_stdout() {
  std::cout.flush();
  const bool stream_ok = !std::cout.fail();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int err = errno;
  if (!flushed || std::ferror(stdout) || !stream_ok)
    throw formats::Error(std::string("cannot write to standard output") +
                         (err ? std::string(" (") + std::strerror(err) + ")" : std::string()));
}

void write_output(const std::string& path, const std::function<void(std::ostream&)>& fill) {
  if (path == "-") {
    fill(std::cout);
    finish_stdout();
    return;
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw formats::Error("cannot create " + tmp + " (writing " + path + ")");
    fill(f);
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw formats::Error("cannot write " + tmp + " (writing " + path + "; disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw formats::Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
}

void write_output(const std::string& path, const std::string& text) {
  write_output(path, [&](std::ostream& os) { os.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

std::uint64_t parse_byte_size(const std::string& s, const std::string& option) {
  std::string why;
  if (auto v = formats::parse_byte_size(s, &why)) return *v;
  throw formats::Error(formats::byte_size_error(option, s, why));
}

namespace {
// Identity of an existing file (device, inode), so that two spellings of one path compare equal.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ec1, ec2;
  const auto ca = fs::weakly_canonical(a, ec1), cb = fs::weakly_canonical(b, ec2);
  return !ec1 && !ec2 && ca == cb;
}
}  // namespace

void check_outputs(const std::vector<std::string>& inputs, const std::vector<OutputArg>& outputs) {
  bool stdout_used = false;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const auto& o = outputs[i];
    if (o.path.empty()) throw formats::Error(o.option + " needs a file name ('-' = standard output)");
    if (o.path == "-") {
      if (stdout_used) throw formats::Error("only one output can go to standard output ('-')");
      stdout_used = true;
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(o.path, ec)) throw formats::Error(o.option + " " + o.path + " is a directory");
    for (const auto& in : inputs)
      if (same_file(o.path, in))
        throw formats::Error(o.option + " " + o.path + " is also an input; writing it would replace that input");
    for (std::size_t k = 0; k < i; ++k)
      if (outputs[k].path != "-" && same_file(o.path, outputs[k].path))
        throw formats::Error(o.option + " and " + outputs[k].option + " name the same file " + o.path +
                             "; one would replace the other");
  }
}

}  // namespace cdma::cli
