#include "util.hpp"

#include <cdma/formats/byte_size.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/formats/output_file.hpp>

#include <fmt/core.h>

#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
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
  // Whatever this process printed reaches stdout first, in case `path` is /dev/stdout.
  std::cout.flush();
  std::fflush(stdout);
  formats::write_output_file(path, fill);
}

void write_output(const std::string& path, const std::string& text) {
  write_output(path, [&](std::ostream& os) { os.write(text.data(), static_cast<std::streamsize>(text.size())); });
}

CLI::Validator finite_between(double lo, double hi) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        std::size_t used = 0;
        try {
          v = std::stod(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size()) return "'" + s + "' is not a number";
        if (!std::isfinite(v) || v < lo || v > hi)
          return fmt::format("{} is not a finite number in [{:g}, {:g}]", s, lo, hi);
        return "";
      },
      fmt::format("[{:g}, {:g}]", lo, hi));
}

std::uint64_t parse_byte_size(const std::string& s, const std::string& option) {
  std::string why;
  if (auto v = formats::parse_byte_size(s, &why)) return *v;
  throw formats::Error(formats::byte_size_error(option, s, why));
}

std::optional<std::string> missing_input(const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) continue;
    const int err = errno;
    if (err == ENOENT) return p + ": no such file";  // the trace reader's words
    return p + ": cannot open (" + std::strerror(err) + ")";
  }
  return std::nullopt;
}

std::optional<std::string> codec_word_among_traces(const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) continue;
    try {
      (void)formats::make_codec(p);
    } catch (const formats::Error&) {
      continue;  // not a codec name: the missing file is reported as such
    }
    return fmt::format(
        "'{}' is a codec name, not a trace file: list options take one comma-separated value "
        "(e.g. --codecs zvc,{})",
        p, p);
  }
  return std::nullopt;
}

std::vector<std::string> distinct_engines(const std::vector<std::string>& engines) {
  std::vector<std::string> out;
  for (const auto& e : engines) {
    const auto colon = e.find(':');
    std::string codec = colon == std::string::npos ? "zvc" : e.substr(colon + 1);
    try {  // zlib and zlib-6 are one codec; a wrong name is left for the replay's own error
      codec = formats::make_codec(codec)->name();
    } catch (const formats::Error&) {
    }
    const std::string full = e.substr(0, colon) + ":" + codec;
    for (const auto& seen : out)
      if (seen == full) throw formats::UsageError("--engine " + full + " is named twice");
    out.push_back(full);
  }
  return out;
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
    if (o.path.empty()) throw formats::UsageError(o.option + " needs a file name ('-' = standard output)");
    if (o.path == "-") {
      if (stdout_used) throw formats::UsageError("only one output can go to standard output ('-')");
      stdout_used = true;
      continue;
    }
    try {  // a directory, a block device, a loop of links: refused before any work
      (void)formats::resolve_output(o.path);
    } catch (const formats::UsageError& e) {
      throw formats::UsageError(o.option + " " + e.what());
    } catch (const formats::Error&) {
      // A path that cannot be examined (a missing folder, no permission) is the write's error (exit 1).
    }
    for (const auto& in : inputs)
      if (same_file(o.path, in))
        throw formats::UsageError(o.option + " " + o.path + " is also an input; writing it would replace that input");
    for (std::size_t k = 0; k < i; ++k)
      if (outputs[k].path != "-" && same_file(o.path, outputs[k].path))
        throw formats::UsageError(o.option + " and " + outputs[k].option + " name the same file " + o.path +
                                  "; one would replace the other");
  }
}

}  // namespace cdma::cli
